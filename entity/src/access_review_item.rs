use sea_orm::entity::prelude::*;

/// One user under review, with the roles under review and what became of
/// them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_review_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub review_id: Uuid,
    pub user_id: Uuid,
    /// The roles under review (a JSON array of ids).
    pub role_ids: Json,
    /// `KEEP` or `REVOKE`; none while undecided.
    pub decision: Option<String>,
    /// Decided by the review's due date rather than by a reviewer.
    pub timed_out: bool,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTimeUtc>,
    pub note: Option<String>,
    /// The roles a REVOKE took away (those the user still held).
    pub revoked_role_ids: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
