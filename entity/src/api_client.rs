use sea_orm::entity::prelude::*;

/// A machine credential of one organisation. The token is stored only as its
/// SHA-256 digest; `token_hint` is its first characters, to tell tokens apart.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The service account the client acts through.
    pub user_id: Uuid,
    pub name: String,
    /// Permission names, comma-separated.
    pub permissions: String,
    pub token_hash: String,
    pub token_hint: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
