use sea_orm::entity::prelude::*;

/// An import that fetches its file from `url` on a schedule.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_feeds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// The import kind: `USERS`, `PROVIDERS`, `PATIENTS` or `LOCATIONS`.
    pub kind: String,
    pub url: String,
    /// Request headers (an API key), a JSON object encrypted under the
    /// server's secret key.
    pub headers_sealed: Option<String>,
    /// The mapping template each run reads the file with.
    pub template_id: Uuid,
    /// The project a PATIENTS feed enrols into.
    pub project_id: Option<Uuid>,
    /// Cron syntax (five fields, or six with seconds), in the organisation's time zone.
    pub schedule: String,
    pub active: bool,
    /// When the next scheduled run is due; the instance that moves it on runs it.
    pub next_run_at: Option<DateTimeUtc>,
    /// What the last fetched file was: its ETag, and its SHA-256 in hex.
    pub last_etag: Option<String>,
    pub last_digest: Option<String>,
    /// Whose rights each run imports with, as they are at the run.
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
