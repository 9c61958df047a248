//! Single sign-on: an organisation's OpenID Connect identity providers, each
//! for some email domains, with its client secret encrypted by the server's
//! key and its groups mapped to roles; and the logins under way, found by
//! their `state`, each with its nonce and PKCE verifier, taken once.

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
                    .table(IdentityProviders::Table)
                    .col(pk_uuid(IdentityProviders::Id))
                    .col(uuid(IdentityProviders::OrganizationId))
                    .col(string_len(IdentityProviders::Name, 200))
                    .col(string_len(IdentityProviders::Issuer, 500))
                    .col(string_len(IdentityProviders::ClientId, 500))
                    // Encrypted with ROLLCALL_SECRET_KEY; never returned.
                    .col(text(IdentityProviders::ClientSecret))
                    // JSON array of lower-case domains.
                    .col(text(IdentityProviders::EmailDomains))
                    .col(string_len(IdentityProviders::GroupsClaim, 200))
                    // JSON array of { group, roleId }.
                    .col(text(IdentityProviders::RoleMappings))
                    .col(boolean(IdentityProviders::JitProvisioning))
                    .col(boolean(IdentityProviders::Required))
                    // JSON array of addresses that keep password logins
                    // while `required` holds (break-glass administrators).
                    .col(text(IdentityProviders::BreakGlassEmails))
                    .col(timestamp_with_time_zone(IdentityProviders::CreatedAt))
                    .col(timestamp_with_time_zone(IdentityProviders::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_identity_providers_organization")
                            .from(IdentityProviders::Table, IdentityProviders::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SsoLogins::Table)
                    .col(pk_uuid(SsoLogins::Id))
                    .col(string_len_uniq(SsoLogins::State, 128))
                    .col(uuid(SsoLogins::ProviderId))
                    .col(string_len(SsoLogins::Nonce, 128))
                    // Encrypted with ROLLCALL_SECRET_KEY.
                    .col(text(SsoLogins::PkceVerifier))
                    .col(string_len(SsoLogins::ReturnTo, 2000))
                    .col(timestamp_with_time_zone(SsoLogins::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sso_logins_provider")
                            .from(SsoLogins::Table, SsoLogins::ProviderId)
                            .to(IdentityProviders::Table, IdentityProviders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SsoLogins::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IdentityProviders::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IdentityProviders {
    Table,
    Id,
    OrganizationId,
    Name,
    Issuer,
    ClientId,
    ClientSecret,
    EmailDomains,
    GroupsClaim,
    RoleMappings,
    JitProvisioning,
    Required,
    BreakGlassEmails,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SsoLogins {
    Table,
    Id,
    State,
    ProviderId,
    Nonce,
    PkceVerifier,
    ReturnTo,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
