use sea_orm::entity::prelude::*;

/// A patient enrolled in a project, and where their request stands.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enrollments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub project_id: Uuid,
    pub patient_id: Uuid,
    /// The external id the organisation enrolled the patient under.
    pub external_id: Option<String>,
    /// `ADDED`, `REQUESTED` or `RESPONDED`.
    pub status: String,
    /// `MANUAL`, `API`, `IMPORT`, `GENERIC_LINK` or `UNIQUE_LINK`.
    pub source: String,
    /// `EMAIL` or `SMS`: the channel of the first request.
    pub request_channel: Option<String>,
    pub requested_at: Option<DateTimeUtc>,
    pub last_requested_at: Option<DateTimeUtc>,
    /// Requests sent, the first one included; more than one means reminders.
    pub request_count: i32,
    /// The outbox message of the latest request.
    pub last_message_id: Option<Uuid>,
    pub responded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// What someone submitted through the generic link naming this existing
    /// patient, waiting for staff to confirm or dismiss it.
    pub pending_response: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
