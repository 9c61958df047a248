//! Fixing and undoing imports in place: a failed row edited in the log
//! (`edited_at`) and retried in a job of its own (`retried_in_job_id`, whose
//! `retry_of_job_id` names the first); what a written row changed (`undo`), so
//! that a job reverting the import (`reverts_job_id`) can give the earlier
//! values back.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column at a time: SQLite alters one per statement.
        for column in [
            timestamp_with_time_zone_null(ImportRows::EditedAt),
            uuid_null(ImportRows::RetriedInJobId),
            json_null(ImportRows::Undo),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ImportRows::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [ImportJobs::RetryOfJobId, ImportJobs::RevertsJobId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ImportJobs::Table)
                        .add_column(uuid_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ImportJobs::RevertsJobId, ImportJobs::RetryOfJobId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ImportJobs::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            ImportRows::Undo,
            ImportRows::RetriedInJobId,
            ImportRows::EditedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ImportRows::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ImportRows {
    Table,
    EditedAt,
    RetriedInJobId,
    Undo,
}

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    RetryOfJobId,
    RevertsJobId,
}
