use sea_orm::entity::prelude::*;

/// One entry of the append-only audit trail: who did what, to which record, from where.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub session_id: Option<String>,
    /// A stable dotted name such as `session.revoke` or `user.deactivate`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// The changed fields; never secrets.
    pub changes: Option<Json>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
