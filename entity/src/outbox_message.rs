use sea_orm::entity::prelude::*;

/// A message to deliver, written in the same transaction as the change that causes it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    /// `EMAIL` or `SMS`.
    pub channel: String,
    /// What the message is for, e.g. `user.invite`.
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// `PENDING`, `SENDING`, `SENT`, `FAILED` or `UNDELIVERED`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// While `SENDING`: the claim of one instance.
    pub locked_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
