//! Leases, for the work that one instance at a time must do (forwarding the
//! audit trail to a SIEM, the daily sweeps), and the syslog forwarder's place
//! in each audit chain.

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
                    .table(Leases::Table)
                    .col(string_len(Leases::Name, 64).primary_key())
                    .col(uuid(Leases::Holder))
                    .col(timestamp_with_time_zone(Leases::LockedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditForwarded::Table)
                    .col(uuid(AuditForwarded::ChainId).primary_key())
                    .col(big_integer(AuditForwarded::Seq))
                    .col(timestamp_with_time_zone(AuditForwarded::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditForwarded::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Leases::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Holder,
    LockedUntil,
}

#[derive(DeriveIden)]
enum AuditForwarded {
    Table,
    ChainId,
    Seq,
    UpdatedAt,
}
