//! Connector feeds: imports that fetch their file from a URL on a schedule.
//! Each run is an ordinary import job, linked to its feed.

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
                    .table(ImportFeeds::Table)
                    .col(uuid(ImportFeeds::Id).primary_key())
                    .col(uuid(ImportFeeds::OrganizationId))
                    .col(string_len(ImportFeeds::Name, 100))
                    .col(string_len(ImportFeeds::Kind, 20))
                    .col(string_len(ImportFeeds::Url, 2048))
                    .col(text_null(ImportFeeds::HeadersSealed))
                    .col(uuid(ImportFeeds::TemplateId))
                    .col(uuid_null(ImportFeeds::ProjectId))
                    .col(string_len(ImportFeeds::Schedule, 100))
                    .col(boolean(ImportFeeds::Active))
                    .col(timestamp_with_time_zone_null(ImportFeeds::NextRunAt))
                    .col(string_len_null(ImportFeeds::LastEtag, 255))
                    .col(string_len_null(ImportFeeds::LastDigest, 64))
                    .col(uuid_null(ImportFeeds::CreatedBy))
                    .col(timestamp_with_time_zone(ImportFeeds::CreatedAt))
                    .col(timestamp_with_time_zone(ImportFeeds::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_feeds_organization")
                            .from(ImportFeeds::Table, ImportFeeds::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_import_feeds_next_run")
                    .table(ImportFeeds::Table)
                    .col(ImportFeeds::NextRunAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ImportJobs::Table)
                    .add_column(uuid_null(ImportJobs::FeedId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_import_jobs_feed")
                    .table(ImportJobs::Table)
                    .col(ImportJobs::FeedId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_import_jobs_feed")
                    .table(ImportJobs::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ImportJobs::Table)
                    .drop_column(ImportJobs::FeedId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ImportFeeds::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ImportFeeds {
    Table,
    Id,
    OrganizationId,
    Name,
    Kind,
    Url,
    HeadersSealed,
    TemplateId,
    ProjectId,
    Schedule,
    Active,
    NextRunAt,
    LastEtag,
    LastDigest,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    FeedId,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
