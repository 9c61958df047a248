//! Who a provider's subject is here: recorded at each single sign-on, so
//! that the provider's back-channel logout, which names its subject and not
//! an address, reaches the right account.

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
                    .table(SsoIdentities::Table)
                    .col(uuid(SsoIdentities::ProviderId))
                    .col(string_len(SsoIdentities::Subject, 255))
                    .col(uuid(SsoIdentities::UserId))
                    .col(timestamp_with_time_zone(SsoIdentities::LastLoginAt))
                    .primary_key(
                        Index::create()
                            .col(SsoIdentities::ProviderId)
                            .col(SsoIdentities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sso_identities_provider")
                            .from(SsoIdentities::Table, SsoIdentities::ProviderId)
                            .to(IdentityProviders::Table, IdentityProviders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sso_identities_user")
                            .from(SsoIdentities::Table, SsoIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SsoIdentities::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SsoIdentities {
    Table,
    ProviderId,
    Subject,
    UserId,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum IdentityProviders {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
