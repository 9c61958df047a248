//! The import center: jobs and their files (kept in the database, so any
//! instance can run them), the outcome of every row, and mapping templates.

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
                    .table(ImportJobs::Table)
                    .col(pk_uuid(ImportJobs::Id))
                    .col(uuid(ImportJobs::OrganizationId))
                    .col(string_len(ImportJobs::Kind, 16))
                    .col(string_len(ImportJobs::Status, 24))
                    .col(string_len(ImportJobs::FileName, 255))
                    .col(json(ImportJobs::Mapping))
                    .col(json(ImportJobs::Settings))
                    .col(uuid_null(ImportJobs::ProjectId))
                    .col(boolean(ImportJobs::DryRun).default(false))
                    .col(integer(ImportJobs::TotalRows).default(0))
                    .col(integer(ImportJobs::ProcessedRows).default(0))
                    .col(integer(ImportJobs::CreatedCount).default(0))
                    .col(integer(ImportJobs::UpdatedCount).default(0))
                    .col(integer(ImportJobs::SkippedCount).default(0))
                    .col(integer(ImportJobs::FailedCount).default(0))
                    .col(text_null(ImportJobs::ErrorMessage))
                    .col(uuid_null(ImportJobs::CreatedBy))
                    .col(timestamp_with_time_zone(ImportJobs::CreatedAt))
                    .col(timestamp_with_time_zone_null(ImportJobs::StartedAt))
                    .col(timestamp_with_time_zone_null(ImportJobs::FinishedAt))
                    .col(string_len_null(ImportJobs::LeaseOwner, 64))
                    .col(timestamp_with_time_zone_null(ImportJobs::LeaseExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_jobs_organization")
                            .from(ImportJobs::Table, ImportJobs::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_import_jobs_organization",
                vec![ImportJobs::OrganizationId, ImportJobs::Id],
            ),
            (
                "ix_import_jobs_claimable",
                vec![ImportJobs::Status, ImportJobs::LeaseExpiresAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(ImportJobs::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        // The file apart from the job, so that listing jobs never loads files.
        manager
            .create_table(
                Table::create()
                    .table(ImportFiles::Table)
                    .col(pk_uuid(ImportFiles::JobId))
                    .col(blob(ImportFiles::Data))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_files_job")
                            .from(ImportFiles::Table, ImportFiles::JobId)
                            .to(ImportJobs::Table, ImportJobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ImportRows::Table)
                    .col(uuid(ImportRows::JobId))
                    .col(integer(ImportRows::RowNumber))
                    .col(string_len(ImportRows::Status, 16))
                    // The row's identity (normalised email or external id), to name
                    // the earlier row a later duplicate repeats, even after a resume.
                    .col(string_len_null(ImportRows::Identity, 254))
                    .col(string_len_null(ImportRows::RecordId, 64))
                    .col(json(ImportRows::Errors))
                    .col(json(ImportRows::RowValues))
                    .primary_key(
                        Index::create()
                            .col(ImportRows::JobId)
                            .col(ImportRows::RowNumber),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_rows_job")
                            .from(ImportRows::Table, ImportRows::JobId)
                            .to(ImportJobs::Table, ImportJobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_import_rows_job_status", ImportRows::Status),
            ("ix_import_rows_job_identity", ImportRows::Identity),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(ImportRows::Table)
                        .col(ImportRows::JobId)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(MappingTemplates::Table)
                    .col(pk_uuid(MappingTemplates::Id))
                    .col(uuid(MappingTemplates::OrganizationId))
                    .col(string_len(MappingTemplates::Kind, 16))
                    .col(string_len(MappingTemplates::Name, 100))
                    .col(json(MappingTemplates::Mapping))
                    .col(json(MappingTemplates::Settings))
                    .col(uuid_null(MappingTemplates::CreatedBy))
                    .col(timestamp_with_time_zone(MappingTemplates::CreatedAt))
                    .col(timestamp_with_time_zone(MappingTemplates::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mapping_templates_organization")
                            .from(MappingTemplates::Table, MappingTemplates::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_mapping_templates_name")
                    .table(MappingTemplates::Table)
                    .col(MappingTemplates::OrganizationId)
                    .col(MappingTemplates::Kind)
                    .col(MappingTemplates::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MappingTemplates::Table.into_iden(),
            ImportRows::Table.into_iden(),
            ImportFiles::Table.into_iden(),
            ImportJobs::Table.into_iden(),
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
enum ImportJobs {
    Table,
    Id,
    OrganizationId,
    Kind,
    Status,
    FileName,
    Mapping,
    Settings,
    ProjectId,
    DryRun,
    TotalRows,
    ProcessedRows,
    CreatedCount,
    UpdatedCount,
    SkippedCount,
    FailedCount,
    ErrorMessage,
    CreatedBy,
    CreatedAt,
    StartedAt,
    FinishedAt,
    LeaseOwner,
    LeaseExpiresAt,
}

#[derive(DeriveIden)]
enum ImportFiles {
    Table,
    JobId,
    Data,
}

#[derive(DeriveIden)]
enum ImportRows {
    Table,
    JobId,
    RowNumber,
    Status,
    Identity,
    RecordId,
    Errors,
    RowValues,
}

#[derive(DeriveIden)]
enum MappingTemplates {
    Table,
    Id,
    OrganizationId,
    Kind,
    Name,
    Mapping,
    Settings,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}
