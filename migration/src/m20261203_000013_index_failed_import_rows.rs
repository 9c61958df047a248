//! Import rows keep one index besides their key: the failed rows of each job,
//! which the failed-row files, edits and retries read. The job's other rows
//! are read in row order through the key; the identities a resumed job needs
//! are read once the same way, so the index on them is dropped, and so is the
//! one on every row's status.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // The same SQL on PostgreSQL and SQLite, both of which keep partial
        // indexes.
        for statement in [
            "DROP INDEX ix_import_rows_job_status",
            "DROP INDEX ix_import_rows_job_identity",
            "CREATE INDEX ix_import_rows_job_failed ON import_rows (job_id, row_number) \
             WHERE status = 'FAILED'",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "DROP INDEX ix_import_rows_job_failed",
            "CREATE INDEX ix_import_rows_job_status ON import_rows (job_id, status)",
            "CREATE INDEX ix_import_rows_job_identity ON import_rows (job_id, identity)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
