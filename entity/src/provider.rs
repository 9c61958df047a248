use sea_orm::entity::prelude::*;

/// A staff user who provides care: NPI, organisation role, practice and billing details.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    /// Ten digits with a valid check digit; unique within the organisation.
    pub npi: String,
    /// Provider, Admin, Billing, …: the provider's role in the organisation.
    pub organization_role: String,
    pub specialty: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub billing_tax_id: Option<String>,
    pub billing_address: Option<String>,
    /// `PENDING`, `IN_REVIEW`, `CREDENTIALED`, `EXPIRED` or `DENIED`.
    pub credentialing_status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The organisation's location the provider practises at, if any.
    pub location_id: Option<Uuid>,
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
