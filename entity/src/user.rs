use sea_orm::entity::prelude::*;

/// A staff login. `email` is stored normalised (trimmed, lower case).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    /// argon2id PHC string; `None` until the user sets a password through an invite.
    pub password_hash: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    /// `ACTIVE` or `INACTIVE`: whether the user may log in.
    pub status: String,
    /// `ACTIVE`, `INACTIVE` or `LEAVE`, as the organisation's HR records have it.
    pub employee_status: String,
    pub mobile_phone: Option<String>,
    pub locale: Option<String>,
    pub idle_timeout_minutes: Option<i32>,
    pub external_id: Option<String>,
    pub must_change_password: bool,
    pub is_super_admin: bool,
    pub last_login_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Appended to emails the user sends from the front-ends.
    pub email_signature: Option<String>,
    /// The front-ends' per-user settings (default views and the like): a JSON
    /// object of bounded size.
    pub preferences: Option<Json>,
    /// The account an API client acts through: nobody signs in to it, and
    /// staff lists, SCIM and exports never show it.
    pub service_account: bool,
    /// The `userName` a SCIM client provisioned the user under, when it
    /// differs from the email (an identity provider's principal name).
    pub user_name: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    /// When a SCIM client deleted the user: deactivated, kept for history,
    /// no longer shown to SCIM.
    pub deprovisioned_at: Option<DateTimeUtc>,
    /// When an administrator last let the user log in again: dormancy counts
    /// from then too.
    pub reactivated_at: Option<DateTimeUtc>,
    /// When the user was last warned that their account is going dormant.
    pub dormancy_warned_at: Option<DateTimeUtc>,
}

impl Model {
    /// The moment from which the user's inactivity counts: their last sign-in,
    /// or when the account was made or last reactivated if later.
    pub fn active_since(&self) -> DateTimeUtc {
        [
            Some(self.created_at),
            self.last_login_at,
            self.reactivated_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.created_at)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
    #[sea_orm(has_many = "super::user_role::Entity")]
    UserRoles,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::role::Entity> for Entity {
    fn to() -> RelationDef {
        super::user_role::Relation::Role.def()
    }
    fn via() -> Option<RelationDef> {
        Some(super::user_role::Relation::User.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
