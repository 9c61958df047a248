//! What SCIM provisioning keeps beyond the staff record: a group's (a
//! role's) id at the identity provider, and of a user the
//! provisioning client's `userName` (an identity provider's user principal
//! name need not be the email address), the enterprise extension's employee
//! number and department, and when the client deleted the user (the record
//! stays, deactivated, for its history; SCIM no longer shows it).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string_len_null(Users::UserName, 255),
            string_len_null(Users::EmployeeNumber, 64),
            string_len_null(Users::Department, 100),
            timestamp_with_time_zone_null(Users::DeprovisionedAt),
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
                    .table(Roles::Table)
                    .add_column(string_len_null(Roles::ExternalId, 255))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_organization_user_name")
                    .table(Users::Table)
                    .col(Users::OrganizationId)
                    .col(Users::UserName)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_organization_user_name")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Users::UserName,
            Users::EmployeeNumber,
            Users::Department,
            Users::DeprovisionedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Roles::Table)
                    .drop_column(Roles::ExternalId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    ExternalId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    OrganizationId,
    UserName,
    EmployeeNumber,
    Department,
    DeprovisionedAt,
}
