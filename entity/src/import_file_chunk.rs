use sea_orm::entity::prelude::*;

/// Whole rows of an import's file, some tens of kilobytes of them, read by the job
/// one chunk at a time in `seq` order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_file_chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    /// From 1, in the file's order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    /// The number of the row before the chunk's first, as a spreadsheet
    /// counts (the header is row 1 in a CSV file).
    pub after_row: i32,
    /// How many rows the chunk yields, blank ones aside.
    pub row_count: i32,
    /// The rows as CSV text in UTF-8, with the file's delimiter.
    pub data: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
