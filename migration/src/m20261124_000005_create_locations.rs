//! The practice locations of an organisation.

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
            .create_table(
                Table::create()
                    .table(Locations::Table)
                    .col(pk_uuid(Locations::Id))
                    .col(uuid(Locations::OrganizationId))
                    .col(string(Locations::Name))
                    // The name trimmed and lower-cased: unique per organisation, so
                    // "Main Clinic" and "main clinic" are one location.
                    .col(string(Locations::NameKey))
                    .col(string_null(Locations::AddressLine1))
                    .col(string_null(Locations::AddressLine2))
                    .col(string_null(Locations::City))
                    .col(string_null(Locations::State))
                    .col(string_null(Locations::PostalCode))
                    .col(string_null(Locations::Phone))
                    .col(boolean(Locations::Active).default(true))
                    .col(timestamp_with_time_zone(Locations::CreatedAt))
                    .col(timestamp_with_time_zone(Locations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_locations_organization")
                            .from(Locations::Table, Locations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_locations_organization_name")
                    .table(Locations::Table)
                    .col(Locations::OrganizationId)
                    .col(Locations::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Locations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Locations {
    Table,
    Id,
    OrganizationId,
    Name,
    NameKey,
    AddressLine1,
    AddressLine2,
    City,
    State,
    PostalCode,
    Phone,
    Active,
    CreatedAt,
    UpdatedAt,
}
