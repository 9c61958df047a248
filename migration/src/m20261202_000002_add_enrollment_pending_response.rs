//! A response through a project's generic link that names a patient the
//! organisation already has is not believed on its own: anyone holding the
//! public link could type someone's email. It is kept beside the enrolment for
//! staff to confirm or dismiss, and the patient's stored details stay.

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
                    .table(Enrollments::Table)
                    .add_column(json_null(Enrollments::PendingResponse))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Enrollments::Table)
                    .drop_column(Enrollments::PendingResponse)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Enrollments {
    Table,
    PendingResponse,
}
