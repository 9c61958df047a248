use sea_orm::entity::prelude::*;

/// A review of who holds which roles: its reviewers attest each user under
/// review by `due_at`; what is left undecided then is revoked or kept as
/// `on_due` says.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub created_by: Option<Uuid>,
    /// The reviewers' user ids (a JSON array).
    pub reviewer_ids: Json,
    pub due_at: DateTimeUtc,
    /// `REVOKE` or `KEEP`.
    pub on_due: String,
    pub closed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

impl Model {
    pub fn reviewers(&self) -> Vec<Uuid> {
        uuids(&self.reviewer_ids)
    }
}

/// The ids of a JSON array of UUIDs.
pub fn uuids(json: &Json) -> Vec<Uuid> {
    json.as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
