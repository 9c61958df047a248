use sea_orm::entity::prelude::*;

/// A CSV import: the mapping it was started with (its file is in `import_files`), where it stands, and
/// which instance runs it (`lease_owner` until `lease_expires_at`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "import_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `USERS`, `PROVIDERS`, `PATIENTS` or `LOCATIONS`.
    pub kind: String,
    /// `QUEUED`, `IN_PROGRESS`, `FINISHED`, `FINISHED_WITH_ERRORS`, `FAILED` or `CANCELLED`.
    pub status: String,
    pub file_name: String,
    /// `[{ "column": …, "field": … }]`.
    pub mapping: Json,
    pub settings: Json,
    pub project_id: Option<Uuid>,
    pub dry_run: bool,
    pub total_rows: i32,
    /// Rows whose outcome is committed; a resumed job continues after them.
    pub processed_rows: i32,
    pub created_count: i32,
    pub updated_count: i32,
    pub skipped_count: i32,
    pub failed_count: i32,
    pub error_message: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// How many times in a row the next batch failed to save.
    pub failed_attempts: i32,
    /// The feed whose run this is, if any.
    pub feed_id: Option<Uuid>,
    /// The job whose edited failed rows this job retries.
    pub retry_of_job_id: Option<Uuid>,
    /// The job this job undoes.
    pub reverts_job_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
