use sea_orm::entity::prelude::*;

/// The outcome of one data row of an import, with its original values.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "import_rows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    /// As a spreadsheet counts: the header is row 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub row_number: i32,
    /// `CREATED`, `UPDATED`, `SKIPPED` or `FAILED`.
    pub status: String,
    pub identity: Option<String>,
    pub record_id: Option<String>,
    /// `[{ "field": …, "message": … }]`.
    pub errors: Json,
    /// The original cells, in column order: `[[header, value], …]`.
    pub row_values: Json,
    /// When a failed row's values were last edited in the log.
    pub edited_at: Option<DateTimeUtc>,
    /// The job that retried this failed row, once retried.
    pub retried_in_job_id: Option<Uuid>,
    /// What a written row changed, for undoing it: see `import::undo`.
    pub undo: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
