//! Access reviews: reviewers attest, user by user, that the roles under
//! review are still needed (KEEP) or not (REVOKE); at the due date the
//! undecided ones are handled as the review says.

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
                    .table(AccessReviews::Table)
                    .col(uuid(AccessReviews::Id).primary_key())
                    .col(uuid(AccessReviews::OrganizationId))
                    .col(string_len(AccessReviews::Name, 200))
                    .col(uuid_null(AccessReviews::CreatedBy))
                    .col(json(AccessReviews::ReviewerIds))
                    .col(timestamp_with_time_zone(AccessReviews::DueAt))
                    .col(string_len(AccessReviews::OnDue, 10))
                    .col(timestamp_with_time_zone_null(AccessReviews::ClosedAt))
                    .col(timestamp_with_time_zone(AccessReviews::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_access_reviews_organization")
                            .from(AccessReviews::Table, AccessReviews::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_reviews_due")
                    .table(AccessReviews::Table)
                    .col(AccessReviews::ClosedAt)
                    .col(AccessReviews::DueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccessReviewItems::Table)
                    .col(uuid(AccessReviewItems::Id).primary_key())
                    .col(uuid(AccessReviewItems::ReviewId))
                    .col(uuid(AccessReviewItems::UserId))
                    .col(json(AccessReviewItems::RoleIds))
                    .col(string_len_null(AccessReviewItems::Decision, 10))
                    .col(boolean(AccessReviewItems::TimedOut).default(false))
                    .col(uuid_null(AccessReviewItems::DecidedBy))
                    .col(timestamp_with_time_zone_null(AccessReviewItems::DecidedAt))
                    .col(text_null(AccessReviewItems::Note))
                    .col(json_null(AccessReviewItems::RevokedRoleIds))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_access_review_items_review")
                            .from(AccessReviewItems::Table, AccessReviewItems::ReviewId)
                            .to(AccessReviews::Table, AccessReviews::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_access_review_items_user")
                            .from(AccessReviewItems::Table, AccessReviewItems::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_review_items_review_user")
                    .table(AccessReviewItems::Table)
                    .col(AccessReviewItems::ReviewId)
                    .col(AccessReviewItems::UserId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccessReviewItems::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AccessReviews::Table).to_owned())
            .await
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
enum AccessReviews {
    Table,
    Id,
    OrganizationId,
    Name,
    CreatedBy,
    ReviewerIds,
    DueAt,
    OnDue,
    ClosedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AccessReviewItems {
    Table,
    Id,
    ReviewId,
    UserId,
    RoleIds,
    Decision,
    TimedOut,
    DecidedBy,
    DecidedAt,
    Note,
    RevokedRoleIds,
}
