//! Passkeys (WebAuthn). An authenticator of kind WEBAUTHN keeps its public key
//! and signature counter as webauthn-rs serialises them, and its credential id
//! once across the platform. A ceremony (a registration or a login under way)
//! is kept until its answer comes back or it expires, found by its challenge,
//! so any instance can finish what another started.

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
                    .table(Authenticators::Table)
                    .add_column(text_null(Authenticators::Credential))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Authenticators::Table)
                    .add_column(string_len_null(Authenticators::CredentialId, 1400))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_authenticators_credential_id")
                    .table(Authenticators::Table)
                    .col(Authenticators::CredentialId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebauthnCeremonies::Table)
                    .col(pk_uuid(WebauthnCeremonies::Id))
                    // The challenge, base64url: what the answer's client data names.
                    .col(string_len_uniq(WebauthnCeremonies::Challenge, 128))
                    // REGISTER or LOGIN.
                    .col(string_len(WebauthnCeremonies::Purpose, 20))
                    .col(uuid_null(WebauthnCeremonies::UserId))
                    .col(text(WebauthnCeremonies::State))
                    .col(timestamp_with_time_zone(WebauthnCeremonies::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webauthn_ceremonies_user")
                            .from(WebauthnCeremonies::Table, WebauthnCeremonies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebauthnCeremonies::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_authenticators_credential_id")
                    .table(Authenticators::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Authenticators::Table)
                    .drop_column(Authenticators::CredentialId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Authenticators::Table)
                    .drop_column(Authenticators::Credential)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Authenticators {
    Table,
    Credential,
    CredentialId,
}

#[derive(DeriveIden)]
enum WebauthnCeremonies {
    Table,
    Id,
    Challenge,
    Purpose,
    UserId,
    State,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
