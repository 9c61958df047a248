use sea_orm::entity::prelude::*;

/// One second factor of a user: a TOTP app or a passkey.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authenticators")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    /// `TOTP` or `WEBAUTHN`.
    pub kind: String,
    pub name: String,
    /// The TOTP secret, encrypted with the server's key.
    pub secret: Option<String>,
    /// The last TOTP time step accepted.
    pub last_used_step: Option<i64>,
    /// Null while the enrolment waits for its first code.
    pub confirmed_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// A passkey's public key and counter, as webauthn-rs serialises them.
    pub credential: Option<String>,
    /// A passkey's credential id, base64url; one account's only.
    pub credential_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
