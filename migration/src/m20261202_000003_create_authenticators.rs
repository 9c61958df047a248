//! Second factors. An authenticator is one user's TOTP app (its secret
//! encrypted with the server's key) or, later, a passkey; recovery codes are
//! kept only as keyed digests, each good once. The organisation chooses who must
//! have a second factor.

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
                    .table(Authenticators::Table)
                    .col(pk_uuid(Authenticators::Id))
                    .col(uuid(Authenticators::OrganizationId))
                    .col(uuid(Authenticators::UserId))
                    // TOTP or WEBAUTHN.
                    .col(string_len(Authenticators::Kind, 20))
                    .col(string_len(Authenticators::Name, 100))
                    // Encrypted with ROLLCALL_SECRET_KEY; never returned by the API.
                    .col(text_null(Authenticators::Secret))
                    // The last TOTP time step accepted: a code is good once.
                    .col(big_integer_null(Authenticators::LastUsedStep))
                    // Null while an enrolment waits for its first code.
                    .col(timestamp_with_time_zone_null(Authenticators::ConfirmedAt))
                    .col(timestamp_with_time_zone_null(Authenticators::LastUsedAt))
                    .col(timestamp_with_time_zone(Authenticators::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_authenticators_user")
                            .from(Authenticators::Table, Authenticators::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_authenticators_organization")
                            .from(Authenticators::Table, Authenticators::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_authenticators_user")
                    .table(Authenticators::Table)
                    .col(Authenticators::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(pk_uuid(RecoveryCodes::Id))
                    .col(uuid(RecoveryCodes::UserId))
                    // HMAC-SHA-256 of the code under the server's key, hex.
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_recovery_codes_user")
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user_code")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .col(RecoveryCodes::CodeHash)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(string_len(Organizations::MfaRequired, 20).default("NONE"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(Organizations::MfaRequired)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Authenticators::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Authenticators {
    Table,
    Id,
    OrganizationId,
    UserId,
    Kind,
    Name,
    Secret,
    LastUsedStep,
    ConfirmedAt,
    LastUsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    MfaRequired,
}
