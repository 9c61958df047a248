use sea_orm::entity::prelude::*;

/// An organisation's OpenID Connect identity provider.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identity_providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Encrypted with the server's key; never returned.
    pub client_secret: String,
    /// JSON array of lower-case domains.
    pub email_domains: String,
    pub groups_claim: String,
    /// JSON array of `{ "group", "roleId" }`.
    pub role_mappings: String,
    pub jit_provisioning: bool,
    /// Whether password logins are off for the provider's domains.
    pub required: bool,
    /// JSON array of addresses that keep password logins while `required`
    /// holds.
    pub break_glass_emails: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
