//! What a one-time link is for: a first password (an invite) or a new one in
//! place of a forgotten one (a password reset). Both are the same kind of
//! single-use, digest-only link; they differ in how long they last, what they
//! say, and whether redeeming one ends the user's sessions.

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
                    .table(Invites::Table)
                    .add_column(string_len(Invites::Purpose, 20).default("INVITE"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Invites::Table)
                    .drop_column(Invites::Purpose)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Purpose,
}
