//! Invites (one-time links to set a first password), providers (a user's practice
//! and billing details), and the outbox of messages to deliver.

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
                    .table(Invites::Table)
                    .col(pk_uuid(Invites::Id))
                    .col(uuid(Invites::UserId))
                    // SHA-256 of the token, hex: the token itself is never stored.
                    .col(string_len(Invites::TokenHash, 64))
                    .col(timestamp_with_time_zone(Invites::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Invites::UsedAt))
                    .col(uuid_null(Invites::CreatedBy))
                    .col(timestamp_with_time_zone(Invites::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invites_user")
                            .from(Invites::Table, Invites::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_invites_token_hash")
                    .table(Invites::Table)
                    .col(Invites::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_invites_user")
                    .table(Invites::Table)
                    .col(Invites::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Providers::Table)
                    .col(pk_uuid(Providers::Id))
                    .col(uuid(Providers::OrganizationId))
                    .col(uuid(Providers::UserId))
                    .col(string_len(Providers::Npi, 10))
                    .col(string_len(Providers::OrganizationRole, 100))
                    .col(string_len_null(Providers::Specialty, 200))
                    .col(string_len_null(Providers::AddressLine1, 200))
                    .col(string_len_null(Providers::AddressLine2, 200))
                    .col(string_len_null(Providers::City, 100))
                    .col(string_len_null(Providers::State, 100))
                    .col(string_len_null(Providers::PostalCode, 20))
                    .col(string_len_null(Providers::Phone, 20))
                    .col(string_len_null(Providers::BillingTaxId, 20))
                    .col(string_len_null(Providers::BillingAddress, 500))
                    .col(string_len(Providers::CredentialingStatus, 16))
                    .col(timestamp_with_time_zone(Providers::CreatedAt))
                    .col(timestamp_with_time_zone(Providers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_providers_organization")
                            .from(Providers::Table, Providers::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_providers_user")
                            .from(Providers::Table, Providers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("ux_providers_user", vec![Providers::UserId], true),
            (
                "ux_providers_organization_npi",
                vec![Providers::OrganizationId, Providers::Npi],
                true,
            ),
            (
                "ix_providers_organization_role",
                vec![Providers::OrganizationId, Providers::OrganizationRole],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Providers::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(OutboxMessages::Table)
                    .col(pk_uuid(OutboxMessages::Id))
                    .col(uuid_null(OutboxMessages::OrganizationId))
                    // `EMAIL` or `SMS`.
                    .col(string_len(OutboxMessages::Channel, 8))
                    // What the message is for, e.g. `user.invite`.
                    .col(string_len(OutboxMessages::Kind, 64))
                    .col(string_len(OutboxMessages::Recipient, 254))
                    .col(string_len(OutboxMessages::Subject, 200))
                    .col(text(OutboxMessages::Body))
                    // PENDING, SENDING, SENT, FAILED or UNDELIVERED.
                    .col(string_len(OutboxMessages::Status, 16))
                    .col(integer(OutboxMessages::Attempts).default(0))
                    .col(timestamp_with_time_zone(OutboxMessages::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(OutboxMessages::LockedUntil))
                    .col(string_len_null(OutboxMessages::LastError, 500))
                    .col(timestamp_with_time_zone(OutboxMessages::CreatedAt))
                    .col(timestamp_with_time_zone_null(OutboxMessages::SentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_messages_organization")
                            .from(OutboxMessages::Table, OutboxMessages::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_messages_due")
                    .table(OutboxMessages::Table)
                    .col(OutboxMessages::Status)
                    .col(OutboxMessages::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OutboxMessages::Table.into_iden(),
            Providers::Table.into_iden(),
            Invites::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
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
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Providers {
    Table,
    Id,
    OrganizationId,
    UserId,
    Npi,
    OrganizationRole,
    Specialty,
    AddressLine1,
    AddressLine2,
    City,
    State,
    PostalCode,
    Phone,
    BillingTaxId,
    BillingAddress,
    CredentialingStatus,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OutboxMessages {
    Table,
    Id,
    OrganizationId,
    Channel,
    Kind,
    Recipient,
    Subject,
    Body,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
    SentAt,
}
