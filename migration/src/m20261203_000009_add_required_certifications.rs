//! Credential-aware roles: a role may require certifications by name; a
//! holder without a valid one has the role suspended. Reminders of coming
//! expiries are sent once per certification and threshold.

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
                    .table(Roles::Table)
                    .add_column(json_null(Roles::RequiredCertifications))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CertificationReminders::Table)
                    .col(uuid(CertificationReminders::CertificationId))
                    .col(integer(CertificationReminders::DaysBefore))
                    .col(timestamp_with_time_zone(CertificationReminders::SentAt))
                    .primary_key(
                        Index::create()
                            .col(CertificationReminders::CertificationId)
                            .col(CertificationReminders::DaysBefore),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_certification_reminders_certification")
                            .from(
                                CertificationReminders::Table,
                                CertificationReminders::CertificationId,
                            )
                            .to(Certifications::Table, Certifications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(CertificationReminders::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Roles::Table)
                    .drop_column(Roles::RequiredCertifications)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    RequiredCertifications,
}

#[derive(DeriveIden)]
enum Certifications {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CertificationReminders {
    Table,
    CertificationId,
    DaysBefore,
    SentAt,
}
