//! Emergency access ("break glass"): a user who sees only their assigned
//! patients may, with a reason, see one patient or all for a bounded time;
//! every grant waits for an auditor's review.

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
                    .table(Organizations::Table)
                    .add_column(integer(Organizations::BreakGlassMaxMinutes).default(60))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BreakGlassGrants::Table)
                    .col(uuid(BreakGlassGrants::Id).primary_key())
                    .col(uuid(BreakGlassGrants::OrganizationId))
                    .col(uuid(BreakGlassGrants::UserId))
                    .col(uuid_null(BreakGlassGrants::PatientId))
                    .col(text(BreakGlassGrants::Reason))
                    .col(timestamp_with_time_zone(BreakGlassGrants::StartsAt))
                    .col(timestamp_with_time_zone(BreakGlassGrants::EndsAt))
                    .col(timestamp_with_time_zone_null(BreakGlassGrants::EndedAt))
                    .col(uuid_null(BreakGlassGrants::ReviewedBy))
                    .col(timestamp_with_time_zone_null(BreakGlassGrants::ReviewedAt))
                    .col(text_null(BreakGlassGrants::ReviewNote))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_break_glass_grants_organization")
                            .from(BreakGlassGrants::Table, BreakGlassGrants::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_break_glass_grants_user")
                            .from(BreakGlassGrants::Table, BreakGlassGrants::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_break_glass_grants_user")
                    .table(BreakGlassGrants::Table)
                    .col(BreakGlassGrants::UserId)
                    .col(BreakGlassGrants::EndsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_break_glass_grants_review")
                    .table(BreakGlassGrants::Table)
                    .col(BreakGlassGrants::OrganizationId)
                    .col(BreakGlassGrants::ReviewedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BreakGlassGrants::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(Organizations::BreakGlassMaxMinutes)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    BreakGlassMaxMinutes,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum BreakGlassGrants {
    Table,
    Id,
    OrganizationId,
    UserId,
    PatientId,
    Reason,
    StartsAt,
    EndsAt,
    EndedAt,
    ReviewedBy,
    ReviewedAt,
    ReviewNote,
}
