use sea_orm::entity::prelude::*;

/// A single sign-on under way, found by its `state`; taken once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_logins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub state: String,
    pub provider_id: Uuid,
    pub nonce: String,
    /// Encrypted with the server's key.
    pub pkce_verifier: String,
    /// Where the browser goes once signed in.
    pub return_to: String,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
