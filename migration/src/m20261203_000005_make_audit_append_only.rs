//! The audit trail is append-only at the database too: on PostgreSQL a
//! trigger refuses UPDATE, DELETE and TRUNCATE of `audit_events`, so not even
//! a bug, or someone holding the application's credentials, rewrites it.
//! (SQLite, the embedded single-file database, has no roles to hold apart:
//! there the trail is append-only by the code alone.)

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            r"CREATE FUNCTION audit_events_append_only() RETURNS trigger
              LANGUAGE plpgsql AS $$
              BEGIN
                RAISE EXCEPTION 'the audit trail is append-only: % of audit_events is refused', TG_OP
                  USING ERRCODE = 'insufficient_privilege';
              END
              $$",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER audit_events_append_only \
             BEFORE UPDATE OR DELETE ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER audit_events_no_truncate \
             BEFORE TRUNCATE ON audit_events \
             FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
            .await?;
        db.execute_unprepared("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
            .await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS audit_events_append_only()")
            .await?;
        Ok(())
    }
}
