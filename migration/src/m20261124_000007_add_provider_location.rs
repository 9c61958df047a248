//! A provider's practice address may be one of the organisation's locations.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite cannot add a foreign key to an existing table: the service
        // checks that the location is the organisation's.
        manager
            .alter_table(
                Table::alter()
                    .table(Providers::Table)
                    .add_column(uuid_null(Providers::LocationId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Providers::Table)
                    .drop_column(Providers::LocationId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Providers {
    Table,
    LocationId,
}
