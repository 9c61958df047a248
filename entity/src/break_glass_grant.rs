use sea_orm::entity::prelude::*;

/// Emergency access a user gave themselves: one patient (`patient_id`) or
/// every patient of the organisation (none), from `starts_at` until
/// `ends_at`, or until `ended_at` when they ended it sooner. Reviewed once by
/// an auditor.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "break_glass_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub patient_id: Option<Uuid>,
    pub reason: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<DateTimeUtc>,
    pub review_note: Option<String>,
}

impl Model {
    /// When the access stops: its end, or sooner when it was ended.
    pub fn stops_at(&self) -> DateTimeUtc {
        self.ended_at
            .map_or(self.ends_at, |ended| ended.min(self.ends_at))
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
