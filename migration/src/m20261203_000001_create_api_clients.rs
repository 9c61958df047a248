//! API clients: an organisation's machine credentials (SCIM provisioning, HR
//! connectors, scripts). Each acts through a service account, a row of
//! `users` that nobody signs in to and that staff lists never show, so that
//! everything a client does is attributed to it as a user's actions are.

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
                    .table(Users::Table)
                    .add_column(boolean(Users::ServiceAccount).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiClients::Table)
                    .col(uuid(ApiClients::Id).primary_key())
                    .col(uuid(ApiClients::OrganizationId))
                    .col(uuid(ApiClients::UserId))
                    .col(string_len(ApiClients::Name, 100))
                    .col(text(ApiClients::Permissions))
                    .col(string_len(ApiClients::TokenHash, 64).unique_key())
                    .col(string_len(ApiClients::TokenHint, 16))
                    .col(uuid_null(ApiClients::CreatedBy))
                    .col(timestamp_with_time_zone(ApiClients::CreatedAt))
                    .col(timestamp_with_time_zone(ApiClients::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiClients::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiClients::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_clients_organization")
                            .from(ApiClients::Table, ApiClients::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_clients_user")
                            .from(ApiClients::Table, ApiClients::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_clients_organization")
                    .table(ApiClients::Table)
                    .col(ApiClients::OrganizationId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiClients::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::ServiceAccount)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiClients {
    Table,
    Id,
    OrganizationId,
    UserId,
    Name,
    Permissions,
    TokenHash,
    TokenHint,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    ServiceAccount,
}
