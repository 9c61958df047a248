//! Care teams: which staff users a patient is assigned to.

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
                    .table(PatientAssignments::Table)
                    .col(uuid(PatientAssignments::UserId))
                    .col(uuid(PatientAssignments::PatientId))
                    .col(uuid(PatientAssignments::OrganizationId))
                    .col(uuid_null(PatientAssignments::AssignedBy))
                    .col(timestamp_with_time_zone(PatientAssignments::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PatientAssignments::UserId)
                            .col(PatientAssignments::PatientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_assignments_user")
                            .from(PatientAssignments::Table, PatientAssignments::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patient_assignments_patient")
                            .from(PatientAssignments::Table, PatientAssignments::PatientId)
                            .to(Patients::Table, Patients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_patient_assignments_patient")
                    .table(PatientAssignments::Table)
                    .col(PatientAssignments::PatientId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PatientAssignments::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PatientAssignments {
    Table,
    UserId,
    PatientId,
    OrganizationId,
    AssignedBy,
    CreatedAt,
}
