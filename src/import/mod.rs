//! The import center's engine: reading CSV files, mapping their columns to
//! fields, checking rows by the same rules as the API, and the job runner that
//! writes them in batches on whichever instance claims the job.
//!
//! - [`file`]: UTF-8 decoding, delimiter detection, header checks, rows;
//! - [`fields`]: the target fields of each kind;
//! - [`mapping`]: suggested and checked mappings;
//! - [`settings`]: delimiter, update and invite switches;
//! - [`staff`]: USERS and PROVIDERS rows, checked and written per batch;
//! - [`patients`]: PATIENTS rows, enrolled in the job's project;
//! - [`locations`]: LOCATIONS rows, identified by name;
//! - [`jobs`]: claiming jobs with a lease, batches with checkpoints, finishing;
//! - [`export`]: failed rows as CSV and XLSX, safe from formula injection;
//! - [`templates`]: blank templates of each kind, which map themselves;
//! - [`undo`]: what written rows changed, and reverting it.

pub mod center;
pub mod export;
pub mod feeds;
pub mod fields;
pub mod file;
pub mod jobs;
pub mod locations;
pub mod mapping;
mod number_format;
pub mod patients;
pub mod row;
pub mod settings;
pub mod staff;
pub mod staff_export;
pub mod templates;
pub mod undo;
pub mod workbook;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    auth::{Authority, Permission},
    error::{AppError, AppResult, FieldError},
};

/// What a job (or a preview) runs with.
pub struct JobContext<'a> {
    pub kind: fields::ImportKind,
    pub organization: &'a entity::organization::Model,
    /// The project PATIENTS rows are enrolled in.
    pub project: Option<&'a entity::project::Model>,
    pub mapping: &'a mapping::Mapping,
    pub headers: &'a [String],
    pub settings: &'a settings::ImportSettings,
    /// Who started the import, for invites.
    pub started_by: Option<Uuid>,
    pub public_url: &'a str,
}

/// A batch's rows once parsed, by kind (see [`Importer::parse`]).
pub enum ParsedBatch {
    Staff(Vec<staff::ParsedRow>),
    Patients(Vec<patients::ParsedRow>),
    Locations(Vec<locations::ParsedRow>),
}

impl ParsedBatch {
    /// Every row failed as a whole with `error`, each keeping its identity
    /// (so a resumed job remembers it as the run that went on does).
    fn fail(self, error: &FieldError) -> Vec<row::RowResult> {
        match self {
            Self::Staff(rows) => rows
                .into_iter()
                .map(|row| staff::fail_parsed(row, error.clone()))
                .collect(),
            Self::Patients(rows) => rows
                .into_iter()
                .map(|row| row.fail(error.clone()))
                .collect(),
            Self::Locations(rows) => rows
                .into_iter()
                .map(|row| row.fail(error.clone()))
                .collect(),
        }
    }
}

/// What a checked batch writes, by kind (see [`Importer::check`]).
pub enum Writes {
    Staff(staff::Writes),
    Patients(patients::Writes),
    Locations(locations::Writes),
    /// Every row failed.
    Nothing,
}

/// The batch processor of a job's kind.
pub enum Importer<'a> {
    Staff(staff::StaffImport<'a>),
    Patients(patients::PatientImport<'a>),
    Locations(locations::LocationImport<'a>),
}

impl<'a> Importer<'a> {
    pub async fn new(db: &impl ConnectionTrait, context: JobContext<'a>) -> AppResult<Self> {
        use fields::ImportKind;
        match context.kind {
            ImportKind::Patients => {
                let project = context.project.ok_or_else(|| {
                    AppError::bad_input("projectId", "is required for PATIENTS imports")
                })?;
                Ok(Self::Patients(patients::PatientImport {
                    project,
                    mapping: context.mapping,
                    headers: context.headers,
                    settings: context.settings,
                }))
            }
            ImportKind::Users | ImportKind::Providers => Ok(Self::Staff(staff::StaffImport {
                organization: context.organization,
                providers: context.kind == ImportKind::Providers,
                mapping: context.mapping,
                headers: context.headers,
                settings: context.settings,
                roles: staff::roles_by_name(db, context.organization.id).await?,
                role_permissions: crate::services::roles::permissions_of_organization_roles(
                    db,
                    context.organization.id,
                )
                .await?,
                started_by: context.started_by,
                public_url: context.public_url,
            })),
            ImportKind::Locations => Ok(Self::Locations(locations::LocationImport {
                organization_id: context.organization.id,
                mapping: context.mapping,
                headers: context.headers,
                settings: context.settings,
            })),
        }
    }

    /// Check a batch and, when `write`, apply it in the caller's transaction:
    /// [`Self::parse`], [`Self::check`], then [`Self::write`].
    pub async fn process(
        &self,
        db: &impl ConnectionTrait,
        rows: Vec<file::Row>,
        earlier: &mut row::Earlier,
        write: bool,
        authority: &Authority,
    ) -> AppResult<Vec<row::RowResult>> {
        let parsed = self.parse(rows, earlier);
        let (results, writes) = self.check(db, parsed, write, authority).await?;
        if write {
            self.write(db, writes).await?;
        }
        Ok(results)
    }

    /// Parse a batch: each row by its kind's field rules, and its repeats of
    /// an earlier row of the file (which `earlier` then remembers, so batches
    /// are parsed in file order). Nothing is read.
    pub fn parse(&self, rows: Vec<file::Row>, earlier: &mut row::Earlier) -> ParsedBatch {
        match self {
            Self::Staff(import) => ParsedBatch::Staff(import.parse_batch(rows, earlier)),
            Self::Patients(import) => ParsedBatch::Patients(import.parse_batch(&rows, earlier)),
            Self::Locations(import) => ParsedBatch::Locations(import.parse_batch(&rows, earlier)),
        }
    }

    /// Check a parsed batch against what exists, under the access rule for
    /// `authority` (whoever started the import, with the rights they hold
    /// now): without the permissions of the kind's mutations every row fails,
    /// and each row is held to the rule on its own. Each row's outcome, and
    /// what [`Self::write`] then writes; this reads only, so a job checks its
    /// next batch while the one before is written. Undo records are kept for
    /// what will be written (`write`).
    pub async fn check(
        &self,
        db: &impl ConnectionTrait,
        parsed: ParsedBatch,
        write: bool,
        authority: &Authority,
    ) -> AppResult<(Vec<row::RowResult>, Writes)> {
        let lacking = std::iter::once(&Permission::ImportsRun)
            .chain(self.kind().write_permissions())
            .find_map(|p| authority.require_for(*p, "row").err());
        if let Some(refusal) = lacking {
            return Ok((parsed.fail(&FieldError::from(refusal)), Writes::Nothing));
        }
        Ok(match (self, parsed) {
            (Self::Staff(import), ParsedBatch::Staff(rows)) => {
                let (results, writes) = import.check(db, rows, write, authority).await?;
                (results, Writes::Staff(writes))
            }
            (Self::Patients(import), ParsedBatch::Patients(rows)) => {
                let (results, writes) = import.check(db, rows).await?;
                (results, Writes::Patients(writes))
            }
            (Self::Locations(import), ParsedBatch::Locations(rows)) => {
                let (results, writes) = import.check(db, rows).await?;
                (results, Writes::Locations(writes))
            }
            _ => return Err(anyhow::anyhow!("a batch parsed for another kind of import").into()),
        })
    }

    /// Write what [`Self::check`] planned, in the caller's transaction.
    pub async fn write(&self, db: &impl ConnectionTrait, writes: Writes) -> AppResult<()> {
        match (self, writes) {
            (Self::Staff(import), Writes::Staff(writes)) => import.write(db, writes).await,
            (Self::Patients(_), Writes::Patients(writes)) => {
                patients::PatientImport::write(db, writes).await
            }
            (Self::Locations(_), Writes::Locations(writes)) => {
                locations::LocationImport::write(db, writes).await
            }
            (_, Writes::Nothing) => Ok(()),
            _ => Err(anyhow::anyhow!("writes planned for another kind of import").into()),
        }
    }

    /// A value the row's identity equals whenever the row has one, read from
    /// its identifying cells alone: what [`row::Earlier::of_keys`] is given.
    pub fn repeat_key(&self, row: &file::Row) -> Option<String> {
        match self {
            Self::Staff(import) => import.repeat_key(row),
            Self::Patients(import) => import.repeat_key(row),
            Self::Locations(import) => import.repeat_key(row),
        }
    }

    fn kind(&self) -> fields::ImportKind {
        match self {
            Self::Staff(import) if import.providers => fields::ImportKind::Providers,
            Self::Staff(_) => fields::ImportKind::Users,
            Self::Patients(_) => fields::ImportKind::Patients,
            Self::Locations(_) => fields::ImportKind::Locations,
        }
    }

    /// Whether the batch may change existing users' records (and with them
    /// their roles, and so their permissions).
    pub fn changes_users(&self) -> bool {
        match self {
            Self::Staff(_) => true,
            Self::Patients(_) | Self::Locations(_) => false,
        }
    }
}
