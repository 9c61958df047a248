use sea_orm::entity::prelude::*;

/// The tenant: everything else belongs to exactly one organisation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub default_idle_timeout_minutes: i32,
    pub password_min_length: i32,
    pub password_require_digit: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// IANA name; availability is written in it.
    pub time_zone: String,
    /// Who must have a second factor: NONE, PRIVILEGED or ALL.
    pub mfa_required: String,
    /// The longest emergency access a user may give themselves, in minutes.
    pub break_glass_max_minutes: i32,
    /// Users who have not signed in for this many days are deactivated;
    /// never when null.
    pub dormant_after_days: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::user::Entity")]
    Users,
    #[sea_orm(has_many = "super::role::Entity")]
    Roles,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl Related<super::role::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Roles.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
