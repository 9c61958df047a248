use sea_orm::entity::prelude::*;

/// One weekly slot when a staff user works, in the organisation's time zone.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "availability_slots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    /// 1 = Monday … 7 = Sunday.
    pub day_of_week: i16,
    /// Minutes after local midnight; the slot is [start, end).
    pub start_minute: i32,
    pub end_minute: i32,
    pub location_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
