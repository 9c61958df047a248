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

    /// Check a batch and, when `write`, apply it in the caller's transaction,
    /// under the access rule for `authority` (whoever started the import, with
    /// the rights they hold now): without the permissions of the kind's
    /// mutations every row fails, and each row is held to the rule on its own.
    pub async fn process(
        &self,
        db: &impl ConnectionTrait,
        rows: Vec<file::Row>,
        earlier: &mut row::Earlier,
        write: bool,
        authority: &Authority,
    ) -> AppResult<Vec<row::RowResult>> {
        let lacking = std::iter::once(&Permission::ImportsRun)
            .chain(self.kind().write_permissions())
            .find_map(|p| authority.require_for(*p, "row").err());
        if let Some(refusal) = lacking {
            let error = FieldError::from(refusal);
            return Ok(rows
                .into_iter()
                .map(|row| {
                    let values = row::row_values(self.headers(), &row);
                    row::RowResult::failed(row.number, None, vec![error.clone()], values)
                })
                .collect());
        }
        match self {
            Self::Staff(import) => import.process(db, rows, earlier, write, authority).await,
            Self::Patients(import) => import.process(db, rows, earlier, write).await,
            Self::Locations(import) => import.process(db, rows, earlier, write).await,
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

    fn headers(&self) -> &[String] {
        match self {
            Self::Staff(import) => import.headers,
            Self::Patients(import) => import.headers,
            Self::Locations(import) => import.headers,
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
