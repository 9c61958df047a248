//! Self-service profiles: a user's email signature and front-end preferences,
//! their certifications and weekly availability, and the organisation's time
//! zone that availability is written in.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [
            text_null(Users::EmailSignature),
            json_null(Users::Preferences),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(string(Organizations::TimeZone).default("UTC"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Certifications::Table)
                    .col(pk_uuid(Certifications::Id))
                    .col(uuid(Certifications::OrganizationId))
                    .col(uuid(Certifications::UserId))
                    .col(string(Certifications::Name))
                    .col(string_null(Certifications::IssuingBody))
                    .col(string_null(Certifications::Number))
                    .col(date_null(Certifications::IssuedOn))
                    .col(date_null(Certifications::ExpiresOn))
                    .col(timestamp_with_time_zone(Certifications::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_certifications_user")
                            .from(Certifications::Table, Certifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_certifications_expiry",
                vec![Certifications::OrganizationId, Certifications::ExpiresOn],
            ),
            ("ix_certifications_user", vec![Certifications::UserId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Certifications::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AvailabilitySlots::Table)
                    .col(pk_uuid(AvailabilitySlots::Id))
                    .col(uuid(AvailabilitySlots::OrganizationId))
                    .col(uuid(AvailabilitySlots::UserId))
                    // 1 = Monday … 7 = Sunday (ISO 8601).
                    .col(small_integer(AvailabilitySlots::DayOfWeek))
                    // Minutes after local midnight in the organisation's time zone.
                    .col(integer(AvailabilitySlots::StartMinute))
                    .col(integer(AvailabilitySlots::EndMinute))
                    .col(uuid_null(AvailabilitySlots::LocationId))
                    .col(timestamp_with_time_zone(AvailabilitySlots::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_availability_slots_user")
                            .from(AvailabilitySlots::Table, AvailabilitySlots::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_availability_slots_location")
                            .from(AvailabilitySlots::Table, AvailabilitySlots::LocationId)
                            .to(Locations::Table, Locations::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_availability_slots_day",
                vec![
                    AvailabilitySlots::OrganizationId,
                    AvailabilitySlots::DayOfWeek,
                ],
            ),
            (
                "ix_availability_slots_user",
                vec![AvailabilitySlots::UserId],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(AvailabilitySlots::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AvailabilitySlots::Table.into_iden(),
            Certifications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(Organizations::TimeZone)
                    .to_owned(),
            )
            .await?;
        for column in [Users::EmailSignature, Users::Preferences] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    EmailSignature,
    Preferences,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    TimeZone,
}

#[derive(DeriveIden)]
enum Locations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Certifications {
    Table,
    Id,
    OrganizationId,
    UserId,
    Name,
    IssuingBody,
    Number,
    IssuedOn,
    ExpiresOn,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AvailabilitySlots {
    Table,
    Id,
    OrganizationId,
    UserId,
    DayOfWeek,
    StartMinute,
    EndMinute,
    LocationId,
    CreatedAt,
}
