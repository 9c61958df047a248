use sea_orm::entity::prelude::*;

/// The uploaded file of an import job, apart from the job so lists never load
/// it: its header row, its rows being in [`import_file_chunk`]s, or (stored
/// before files were cut into chunks) the whole file as uploaded.
///
/// [`import_file_chunk`]: crate::import_file_chunk
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    pub data: Vec<u8>,
    /// Whether `data` is the header alone, the rows being in chunks.
    pub chunked: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
