use sea_orm::entity::prelude::*;

/// The head of one audit chain: the last event's place and hash. Each
/// organisation has one chain, and events of no organisation one more (under
/// the nil id). A new event takes this row's lock, so the events of a chain
/// are sealed one after another even from many instances at once.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_chains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chain_id: Uuid,
    pub seq: i64,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
