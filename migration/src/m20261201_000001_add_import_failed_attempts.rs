//! How many times in a row an import job's next batch failed to save, so that a
//! batch that can never be saved ends the job instead of being retried forever.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ImportJobs::Table)
                    .add_column(integer(ImportJobs::FailedAttempts).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ImportJobs::Table)
                    .drop_column(ImportJobs::FailedAttempts)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    FailedAttempts,
}
