//! Webhooks: an organisation's subscriptions to its own events, delivered
//! through the outbox (channel `WEBHOOK`, one message per delivery). The
//! signing secret is kept encrypted under `ROLLCALL_SECRET_KEY`: it must be
//! read back to sign.

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
                    .table(Webhooks::Table)
                    .col(uuid(Webhooks::Id).primary_key())
                    .col(uuid(Webhooks::OrganizationId))
                    .col(string_len(Webhooks::Url, 2048))
                    .col(text(Webhooks::Events))
                    .col(text(Webhooks::SecretSealed))
                    .col(boolean(Webhooks::Active))
                    .col(uuid_null(Webhooks::CreatedBy))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhooks_organization")
                            .from(Webhooks::Table, Webhooks::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhooks_organization")
                    .table(Webhooks::Table)
                    .col(Webhooks::OrganizationId)
                    .to_owned(),
            )
            .await?;
        // A webhook's delivery log reads the outbox by recipient.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_messages_channel_recipient")
                    .table(OutboxMessages::Table)
                    .col(OutboxMessages::Channel)
                    .col(OutboxMessages::Recipient)
                    .col(OutboxMessages::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_outbox_messages_channel_recipient")
                    .table(OutboxMessages::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    OrganizationId,
    Url,
    Events,
    SecretSealed,
    Active,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OutboxMessages {
    Table,
    Channel,
    Recipient,
    CreatedAt,
}
