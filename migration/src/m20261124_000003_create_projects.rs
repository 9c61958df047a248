//! Projects, the patients of an organisation, their enrolments in projects, and
//! the unique links that identify a patient of a project.

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
                    .table(Projects::Table)
                    .col(pk_uuid(Projects::Id))
                    .col(uuid(Projects::OrganizationId))
                    .col(string(Projects::Name))
                    .col(text_null(Projects::Description))
                    // The generic link's token: public by design (it is printed as a
                    // QR code), replaced when an admin rotates the link.
                    .col(string_len(Projects::LinkToken, 64))
                    // Secret key from which unique links are derived; never shown.
                    .col(string_len(Projects::LinkKey, 64))
                    .col(timestamp_with_time_zone_null(Projects::ArchivedAt))
                    .col(uuid_null(Projects::CreatedBy))
                    .col(timestamp_with_time_zone(Projects::CreatedAt))
                    .col(timestamp_with_time_zone(Projects::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_projects_organization")
                            .from(Projects::Table, Projects::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "ux_projects_organization_name",
                vec![Projects::OrganizationId, Projects::Name],
                true,
            ),
            ("ux_projects_link_token", vec![Projects::LinkToken], true),
        ] {
            let mut index = Index::create();
            index.name(name).table(Projects::Table);
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
                    .table(Patients::Table)
                    .col(pk_uuid(Patients::Id))
                    .col(uuid(Patients::OrganizationId))
                    .col(string_null(Patients::ExternalId))
                    .col(string_null(Patients::FirstName))
                    .col(string_null(Patients::LastName))
                    // Lower case, like users' emails.
                    .col(string_null(Patients::Email))
                    .col(string_null(Patients::Phone))
                    .col(date_null(Patients::DateOfBirth))
                    .col(timestamp_with_time_zone(Patients::CreatedAt))
                    .col(timestamp_with_time_zone(Patients::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patients_organization")
                            .from(Patients::Table, Patients::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col, unique) in [
            ("ux_patients_external_id", Patients::ExternalId, true),
            ("ix_patients_email", Patients::Email, false),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(Patients::Table)
                .col(Patients::OrganizationId)
                .col(col);
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Enrollments::Table)
                    .col(pk_uuid(Enrollments::Id))
                    .col(uuid(Enrollments::OrganizationId))
                    .col(uuid(Enrollments::ProjectId))
                    .col(uuid(Enrollments::PatientId))
                    // The external id the organisation enrolled the patient under.
                    .col(string_null(Enrollments::ExternalId))
                    // ADDED, REQUESTED or RESPONDED.
                    .col(string_len(Enrollments::Status, 16))
                    // MANUAL, API, IMPORT, GENERIC_LINK or UNIQUE_LINK.
                    .col(string_len(Enrollments::Source, 16))
                    .col(string_len_null(Enrollments::RequestChannel, 8))
                    .col(timestamp_with_time_zone_null(Enrollments::RequestedAt))
                    .col(timestamp_with_time_zone_null(Enrollments::LastRequestedAt))
                    .col(integer(Enrollments::RequestCount).default(0))
                    // The outbox message of the latest request or reminder.
                    .col(uuid_null(Enrollments::LastMessageId))
                    .col(timestamp_with_time_zone_null(Enrollments::RespondedAt))
                    .col(timestamp_with_time_zone(Enrollments::CreatedAt))
                    .col(timestamp_with_time_zone(Enrollments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_enrollments_project")
                            .from(Enrollments::Table, Enrollments::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_enrollments_patient")
                            .from(Enrollments::Table, Enrollments::PatientId)
                            .to(Patients::Table, Patients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_enrollments_project_patient")
                    .table(Enrollments::Table)
                    .col(Enrollments::ProjectId)
                    .col(Enrollments::PatientId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_enrollments_project_status")
                    .table(Enrollments::Table)
                    .col(Enrollments::ProjectId)
                    .col(Enrollments::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PatientLinks::Table)
                    // SHA-256 of the token, hex.
                    .col(string_len(PatientLinks::TokenHash, 64).primary_key())
                    .col(uuid(PatientLinks::ProjectId))
                    // What the link identifies: the organisation's external id, or
                    // a patient enrolled without one.
                    .col(string_null(PatientLinks::ExternalId))
                    .col(uuid_null(PatientLinks::PatientId))
                    .col(timestamp_with_time_zone(PatientLinks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_links_project")
                            .from(PatientLinks::Table, PatientLinks::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_links_patient")
                            .from(PatientLinks::Table, PatientLinks::PatientId)
                            .to(Patients::Table, Patients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PatientLinks::Table.into_iden(),
            Enrollments::Table.into_iden(),
            Patients::Table.into_iden(),
            Projects::Table.into_iden(),
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
enum Projects {
    Table,
    Id,
    OrganizationId,
    Name,
    Description,
    LinkToken,
    LinkKey,
    ArchivedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
    OrganizationId,
    ExternalId,
    FirstName,
    LastName,
    Email,
    Phone,
    DateOfBirth,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Enrollments {
    Table,
    Id,
    OrganizationId,
    ProjectId,
    PatientId,
    ExternalId,
    Status,
    Source,
    RequestChannel,
    RequestedAt,
    LastRequestedAt,
    RequestCount,
    LastMessageId,
    RespondedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PatientLinks {
    Table,
    TokenHash,
    ProjectId,
    ExternalId,
    PatientId,
    CreatedAt,
}
