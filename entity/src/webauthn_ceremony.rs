use sea_orm::entity::prelude::*;

/// A WebAuthn registration or login under way, found by its challenge.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The challenge, base64url without padding.
    pub challenge: String,
    /// `REGISTER` or `LOGIN`.
    pub purpose: String,
    /// Whose ceremony it is; none for a login that lets the passkey say.
    pub user_id: Option<Uuid>,
    /// The server's half of the ceremony, as webauthn-rs serialises it.
    pub state: String,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
