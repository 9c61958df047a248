//! The import center as admins use it (IMPORTS_RUN): preview a file, start a job,
//! follow and cancel it, page through its rows, download its failed rows, and
//! keep mapping templates.

use std::ops::Range;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionSession, TransactionTrait, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{Actor, Permission},
    db::{Page, PageRequest, paginate},
    domain::text,
    error::{AppError, AppResult, FieldError, OnConstraint},
    import::{
        Importer, JobContext,
        export::{self, FailedRow},
        fields::{FieldSpec, ImportKind, fields},
        file::{self, Content, CsvFile, Span, Upload},
        jobs::CHUNK_BYTES,
        jobs::JobStatus,
        mapping::{self, ColumnMapping, Mapping},
        row::{Earlier, RowResult, RowStatus},
        settings::ImportSettings,
    },
    services::{
        audit::{self, AuditEntry},
        organizations,
    },
};

/// Rows shown with their errors in a preview.
const SAMPLE_ROWS: usize = 20;

/// An uploaded file and how to read it.
pub struct ImportRequest {
    pub kind: ImportKind,
    pub file_name: String,
    pub content: Content,
    pub mapping: Option<Vec<ColumnMapping>>,
    pub template_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub settings: Option<ImportSettings>,
    /// An Excel workbook's sheet, and the row naming its columns.
    pub sheet: Option<String>,
    pub header_row: Option<usize>,
    pub dry_run: bool,
    /// The feed that fetched the file, for a feed's run.
    pub feed_id: Option<Uuid>,
}

/// What a preview shows; nothing is written.
pub struct Preview {
    pub headers: Vec<String>,
    pub suggested_mapping: Vec<ColumnMapping>,
    pub missing_required_fields: Vec<String>,
    pub sheets: Vec<String>,
    pub total_rows: usize,
    pub sample_rows: Vec<RowResult>,
    pub valid_rows: usize,
    pub invalid_rows: usize,
}

/// The project a PATIENTS import enrols into: required, the organisation's own,
/// not archived, and the caller must write and see all patients. Other kinds
/// have none.
async fn project_for(
    db: &impl ConnectionTrait,
    actor: &Actor,
    kind: ImportKind,
    project_id: Option<Uuid>,
) -> AppResult<Option<entity::project::Model>> {
    if kind != ImportKind::Patients {
        return Ok(None);
    }
    let Some(id) = project_id else {
        return Err(AppError::bad_input(
            "projectId",
            "is required for PATIENTS imports",
        ));
    };
    let project = actor
        .scope::<entity::project::Entity>()
        .filter(entity::project::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_input("projectId", "no such project"))?;
    if project.archived_at.is_some() {
        return Err(AppError::bad_input(
            "projectId",
            "is archived: it enrols no one",
        ));
    }
    Ok(Some(project))
}

/// The access rule at the door: an import of a kind needs the permissions of the
/// mutations its rows stand for, and mapping roles needs ROLES_MANAGE. Each row
/// is checked again when it is written, with the rights its starter holds then.
fn require_import_rights(actor: &Actor, kind: ImportKind, mapping_roles: bool) -> AppResult<()> {
    actor.require(Permission::ImportsRun)?;
    for permission in kind.write_permissions() {
        actor.require(*permission)?;
    }
    if mapping_roles {
        // Giving roles from a file is changing roles: a sensitive operation.
        actor.require(Permission::RolesManage)?;
        actor.require_recent_mfa()?;
    }
    Ok(())
}

/// A PATIENTS mapping must name the identity: the external id or the email.
fn check_identity_mapped(kind: ImportKind, mapping: &Mapping) -> AppResult<()> {
    if kind == ImportKind::Patients && !mapping.maps("externalId") && !mapping.maps("email") {
        return Err(AppError::bad_input(
            "mapping",
            "map externalId or email: one of them identifies each patient",
        ));
    }
    Ok(())
}

/// Open the file with the delimiter its settings name (or the one detected),
/// with the mapping and settings to use.
async fn open_mapped<'t>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    request: &ImportRequest,
    upload: &'t Upload<'_>,
    specs: &[FieldSpec],
) -> AppResult<(CsvFile<'t>, Vec<ColumnMapping>, ImportSettings)> {
    let source = upload.source();
    // The request's own settings may name the delimiter; a template's settings
    // are known only once the headers are read, so the file may be read twice.
    let first_pass = CsvFile::open_source(
        source,
        request
            .settings
            .as_ref()
            .and_then(ImportSettings::delimiter_byte),
    )?;
    let (pairs, mut settings) =
        resolve_mapping(db, actor, request, &first_pass.headers, specs).await?;
    // What the job reads again: the upload's own sheet and header row.
    settings.sheet.clone_from(&request.sheet);
    settings.header_row = request.header_row;
    let file = if settings
        .delimiter_byte()
        .is_none_or(|d| d == first_pass.delimiter)
    {
        first_pass
    } else {
        CsvFile::open_source(source, settings.delimiter_byte())?
    };
    Ok((file.numbered_from(upload.header_row), pairs, settings))
}

/// The mapping and settings to use: given, from a template, or suggested.
async fn resolve_mapping(
    db: &impl ConnectionTrait,
    actor: &Actor,
    request: &ImportRequest,
    headers: &[String],
    specs: &[FieldSpec],
) -> AppResult<(Vec<ColumnMapping>, ImportSettings)> {
    let template = match request.template_id {
        Some(id) => Some(template_in_scope(db, actor, id).await?),
        None => None,
    };
    if let Some(template) = &template
        && template.kind != request.kind.as_str()
    {
        return Err(AppError::bad_input(
            "templateId",
            format!("is a template for {} imports", template.kind),
        ));
    }
    let template_settings = template
        .as_ref()
        .and_then(|t| serde_json::from_value(t.settings.clone()).ok());
    let settings = request
        .settings
        .clone()
        .or(template_settings)
        .unwrap_or_default();
    let pairs = match (&request.mapping, &template) {
        (Some(pairs), _) => pairs.clone(),
        (None, Some(template)) => serde_json::from_value(template.mapping.clone())
            .map_err(|e| anyhow::anyhow!("stored template unreadable: {e}"))?,
        (None, None) => mapping::suggest(headers, specs),
    };
    Ok((pairs, settings))
}

/// Read, map and check every row of a file without writing anything.
pub async fn preview(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    request: ImportRequest,
) -> AppResult<Preview> {
    let kind = request.kind;
    require_import_rights(actor, kind, false)?;
    let specs = fields(kind);
    let upload = file::read(
        &request.content,
        request.sheet.as_deref(),
        request.header_row,
    )?;
    let (file, pairs, settings) = open_mapped(db, actor, &request, &upload, &specs).await?;
    require_import_rights(actor, kind, pairs.iter().any(|p| p.field == "roles"))?;
    let mut suggested_mapping = mapping::suggest(&file.headers, &specs);
    if matches!(kind, ImportKind::Users | ImportKind::Providers) {
        let mut role_names: Vec<String> =
            crate::import::staff::roles_by_name(db, actor.organization_id)
                .await?
                .into_values()
                .map(|role| role.name)
                .collect();
        role_names.sort();
        mapping::suggest_translations(&file, &pairs, &role_names, &mut suggested_mapping);
    }
    let missing_required_fields =
        mapping::missing_required(&specs, pairs.iter().map(|p| p.field.as_str()));
    let total_rows = file.rows().count();
    let mut preview = Preview {
        headers: file.headers.clone(),
        suggested_mapping,
        missing_required_fields,
        sheets: upload.sheets.clone(),
        total_rows,
        sample_rows: Vec::new(),
        valid_rows: 0,
        invalid_rows: 0,
    };
    // With a mapping that cannot run, the rows cannot be checked: say what is
    // missing and stop there.
    let Ok(mapping) = Mapping::check(pairs, &file.headers, &specs) else {
        return Ok(preview);
    };
    let organization = organizations::find(db, actor, None).await?;
    let project = project_for(db, actor, kind, request.project_id).await?;
    // Every batch is checked as the import would check it, and planned as the
    // import plans it: see `begin_batch`.
    let txn = crate::db::begin_batch(db, false).await?;
    let import = Importer::new(
        &txn,
        JobContext {
            kind,
            organization: &organization,
            project: project.as_ref(),
            mapping: &mapping,
            headers: &file.headers,
            settings: &settings,
            started_by: Some(actor.user_id),
            public_url: "",
        },
    )
    .await?;
    let mut earlier = Earlier::of_keys(total_rows, file.rows().map(|r| import.repeat_key(&r)));
    let mut rows = file.rows().peekable();
    while rows.peek().is_some() {
        let batch: Vec<_> = rows
            .by_ref()
            .take(crate::import::jobs::BATCH_ROWS)
            .collect();
        for result in import
            .process(&txn, batch, &mut earlier, false, &actor.authority())
            .await?
        {
            if result.status == RowStatus::Failed {
                preview.invalid_rows += 1;
            } else {
                preview.valid_rows += 1;
            }
            if preview.sample_rows.len() < SAMPLE_ROWS {
                preview.sample_rows.push(result);
            }
        }
    }
    txn.commit().await?;
    Ok(preview)
}

/// Store the file and mapping as a QUEUED job; a worker picks it up.
pub async fn start(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    request: ImportRequest,
) -> AppResult<entity::import_job::Model> {
    let kind = request.kind;
    require_import_rights(actor, kind, false)?;
    let specs = fields(kind);
    let upload = file::read(
        &request.content,
        request.sheet.as_deref(),
        request.header_row,
    )?;
    let (file, pairs, settings) = open_mapped(db, actor, &request, &upload, &specs).await?;
    require_import_rights(actor, kind, pairs.iter().any(|p| p.field == "roles"))?;
    let mapping = Mapping::check(pairs, &file.headers, &specs)?;
    check_identity_mapped(kind, &mapping)?;
    let project_id = project_for(db, actor, kind, request.project_id)
        .await?
        .map(|p| p.id);
    let (header, spans) = file.spans(CHUNK_BYTES as u64);
    let total_rows = i32::try_from(spans.iter().map(|s| s.rows).sum::<usize>()).unwrap_or(i32::MAX);
    let file_name = text::optional(Some(&request.file_name), "file", 255)
        .ok()
        .flatten()
        .unwrap_or_else(|| "import.csv".to_owned());
    let now = Utc::now();
    let job = entity::import_job::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        kind: kind.as_str().to_owned(),
        status: JobStatus::Queued.as_str().to_owned(),
        file_name,
        mapping: json!(mapping.pairs),
        settings: json!(settings),
        project_id,
        dry_run: request.dry_run,
        total_rows,
        processed_rows: 0,
        created_count: 0,
        updated_count: 0,
        skipped_count: 0,
        failed_count: 0,
        error_message: None,
        created_by: Some(actor.user_id),
        created_at: now,
        started_at: None,
        finished_at: None,
        lease_owner: None,
        lease_expires_at: None,
        failed_attempts: 0,
        feed_id: request.feed_id,
        retry_of_job_id: None,
        reverts_job_id: None,
    };
    let txn = crate::db::begin_write(db).await?;
    insert_job(&txn, &job, Some((&file, header, &spans))).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "import.start")
            .target("ImportJob", job.id)
            .changes(json!({
                "kind": job.kind,
                "fileName": job.file_name,
                "totalRows": total_rows,
                "dryRun": job.dry_run,
            })),
    )
    .await?;
    txn.commit().await?;
    Ok(job)
}

/// Stop a job; batches already committed stay.
pub async fn cancel(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::import_job::Model> {
    use entity::import_job::{Column, Entity};
    let job = job_in_scope(db, actor, id).await?;
    let cancelled = actor
        .tenant()
        .update_many::<Entity>()
        .col_expr(Column::Status, Expr::value(JobStatus::Cancelled.as_str()))
        .col_expr(Column::FinishedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in([JobStatus::Queued.as_str(), JobStatus::InProgress.as_str()]))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if !cancelled {
        return Err(AppError::Conflict(format!(
            "The import has already ended ({}).",
            job.status
        )));
    }
    audit::record(
        db,
        AuditEntry::by(actor, "import.cancel").target("ImportJob", id),
    )
    .await?;
    crate::telemetry::events::import_job_ended(&job.kind, JobStatus::Cancelled.as_str());
    job_in_scope(db, actor, id).await
}

/// A job of the organisation (IMPORTS_RUN), or `None`.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Option<entity::import_job::Model>> {
    actor.require(Permission::ImportsRun)?;
    let job = actor
        .scope::<entity::import_job::Entity>()
        .filter(entity::import_job::Column::Id.eq(id))
        .one(db)
        .await?;
    if job
        .as_ref()
        .is_some_and(|j| j.kind == ImportKind::Patients.as_str())
    {
        // Its rows hold the file's patients, whoever's care team they are in.
        actor.require(Permission::PatientsAll)?;
    }
    Ok(job)
}

/// As [`find`], for a job that must be there.
async fn job_in_scope(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::import_job::Model> {
    find(db, actor, id)
        .await?
        .ok_or(AppError::NotFound("ImportJob"))
}

/// What `importJobs` may be narrowed by.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub kind: Option<ImportKind>,
    pub status: Option<String>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: JobFilter,
    page: PageRequest,
) -> AppResult<Page<entity::import_job::Model>> {
    use entity::import_job::Column;
    actor.require(Permission::ImportsRun)?;
    // The file itself stays in the database: lists never load it.
    let mut select = actor.scope::<entity::import_job::Entity>();
    if !actor.has(Permission::PatientsAll) {
        // As in `find`: a PATIENTS job's rows hold patients outside the
        // caller's care team, so the job is not theirs to see.
        select = select.filter(Column::Kind.ne(ImportKind::Patients.as_str()));
    }
    if let Some(kind) = filter.kind {
        select = select.filter(Column::Kind.eq(kind.as_str()));
    }
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status));
    }
    paginate(db, select, Column::Id, page).await
}

/// A page of the rows of a job that `find` or `list` gave the caller, in row
/// order, optionally of one status. The rows of a PATIENTS job are patient
/// data: reading them is audited.
pub async fn rows(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    job: &entity::import_job::Model,
    status: Option<RowStatus>,
    page: PageRequest<i32>,
) -> AppResult<Page<entity::import_row::Model>> {
    use entity::import_row::{Column, Entity};
    let mut select = actor
        .tenant()
        .find::<Entity>()
        .filter(Column::JobId.eq(job.id));
    if let Some(status) = status {
        select = select.filter(Column::Status.eq(status.as_str()));
    }
    let total_count = crate::db::count_if(db, &select, page.count).await?;
    if let Some(after) = page.after {
        select = select.filter(Column::RowNumber.gt(after));
    }
    let items = select
        .order_by_asc(Column::RowNumber)
        .limit(page.first + 1)
        .all(db)
        .await?;
    let page = Page::of(items, &page, total_count);
    if job.kind == ImportKind::Patients.as_str() && !page.items.is_empty() {
        audit_patient_rows_read(
            db,
            actor,
            job,
            json!({ "rows": page.items.iter().map(|r| r.row_number).collect::<Vec<_>>() }),
        )
        .await?;
    }
    Ok(page)
}

/// Record that `actor` read patients' rows of a PATIENTS `job`.
async fn audit_patient_rows_read(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    job: &entity::import_job::Model,
    which: serde_json::Value,
) -> AppResult<()> {
    audit::record(
        db,
        AuditEntry::by(actor, "patients.read")
            .target("ImportJob", job.id)
            .changes(which),
    )
    .await
}

/// The failed rows of a job as a file: `(file name, content type, bytes)`.
/// `None` when no row failed.
pub async fn failed_rows_file(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    job_id: Uuid,
    xlsx: bool,
) -> AppResult<Option<(String, &'static str, Vec<u8>)>> {
    let job = job_in_scope(db, actor, job_id).await?;
    let rows = actor
        .tenant()
        .find::<entity::import_row::Entity>()
        .filter(entity::import_row::Column::JobId.eq(job_id))
        .filter(entity::import_row::Column::Status.eq("FAILED"))
        .order_by_asc(entity::import_row::Column::RowNumber)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    if job.kind == ImportKind::Patients.as_str() {
        audit_patient_rows_read(
            db,
            actor,
            &job,
            json!({ "failedRows": rows.len(), "format": if xlsx { "xlsx" } else { "csv" } }),
        )
        .await?;
    }
    // Every row keeps its cells under the file's headers, in the file's order.
    let mut headers = Vec::new();
    let failed: Vec<FailedRow> = rows
        .into_iter()
        .map(|row| {
            let values: Vec<(String, String)> =
                serde_json::from_value(row.row_values).unwrap_or_default();
            if headers.is_empty() {
                headers = values.iter().map(|(h, _)| h.clone()).collect();
            }
            let errors: Vec<FieldError> = serde_json::from_value(row.errors).unwrap_or_default();
            FailedRow {
                cells: values.into_iter().map(|(_, v)| v).collect(),
                errors: errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })
        .collect();
    let stem: String = job
        .file_name
        .trim_end_matches(".csv")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    Ok(Some(if xlsx {
        (
            format!("{stem}-failed-rows.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            export::to_xlsx(&headers, &failed)?,
        )
    } else {
        (
            format!("{stem}-failed-rows.csv"),
            "text/csv; charset=utf-8",
            export::to_csv(&headers, &failed)?,
        )
    }))
}

/// The longest value a cell edited in the log may hold.
const LONGEST_EDITED_CELL: usize = 10_000;

/// A job whose rows may be fixed or undone: ended, and not itself a revert.
fn ensure_ended(job: &entity::import_job::Model, field: &'static str) -> AppResult<()> {
    if !JobStatus::from_stored(&job.status).is_final() {
        return Err(AppError::Conflict(
            "The import is still running; wait until it has ended.".to_owned(),
        ));
    }
    if job.reverts_job_id.is_some() {
        return Err(AppError::bad_input(
            field,
            "is a revert: its rows undo another import's and cannot be edited, retried or reverted",
        ));
    }
    Ok(())
}

/// The rights a job's own import needed, held by `actor` now.
fn require_rights_of(actor: &Actor, job: &entity::import_job::Model) -> AppResult<ImportKind> {
    let kind = ImportKind::from_stored(&job.kind)
        .ok_or_else(|| anyhow::anyhow!("unknown import kind {}", job.kind))?;
    let pairs: Vec<ColumnMapping> = serde_json::from_value(job.mapping.clone()).unwrap_or_default();
    require_import_rights(actor, kind, pairs.iter().any(|p| p.field == "roles"))?;
    Ok(kind)
}

/// Edit the values of a failed row of an ended job in its log, by header, and
/// check the row again at once by the rules the import applies: the row
/// comes back with its new errors, or none when it would now go in.
/// `retry_failed_rows` runs the edited rows.
pub async fn update_row(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    job_id: Uuid,
    row_number: i32,
    edits: serde_json::Map<String, serde_json::Value>,
) -> AppResult<entity::import_row::Model> {
    use entity::import_row::{Column, Entity};
    let job = job_in_scope(db, actor, job_id).await?;
    ensure_ended(&job, "jobId")?;
    let kind = require_rights_of(actor, &job)?;
    let row = actor
        .tenant()
        .find_by_id::<Entity>((job.id, row_number))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("ImportRow"))?;
    if row.status != RowStatus::Failed.as_str() {
        return Err(AppError::bad_input(
            "rowNumber",
            format!("only failed rows can be edited; this row is {}", row.status),
        ));
    }
    if let Some(retry) = row.retried_in_job_id {
        return Err(AppError::Conflict(format!(
            "This row was retried in import {retry}; edit it there."
        )));
    }
    let mut values: Vec<(String, String)> =
        serde_json::from_value(row.row_values.clone()).unwrap_or_default();
    let mut problems = Vec::new();
    let mut edited = Vec::new();
    for (header, value) in edits {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Null => String::new(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                problems.push(FieldError::new(
                    format!("values.{header}"),
                    "must be text, a number or null",
                ));
                continue;
            }
        };
        if text.chars().count() > LONGEST_EDITED_CELL {
            problems.push(FieldError::new(
                format!("values.{header}"),
                format!("is longer than {LONGEST_EDITED_CELL} characters"),
            ));
            continue;
        }
        match values.iter_mut().find(|(h, _)| *h == header) {
            Some((h, cell)) => {
                *cell = text;
                edited.push(h.clone());
            }
            None => problems.push(FieldError::new(
                format!("values.{header}"),
                format!(
                    "is not a column of the file; its columns are {}",
                    values
                        .iter()
                        .map(|(h, _)| format!("{h:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::BadInput(problems));
    }
    let errors = recheck(db, actor, &job, kind, row_number, &values).await?;
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let updated = actor
        .tenant()
        .update_many::<Entity>()
        .col_expr(Column::RowValues, Expr::value(json!(values)))
        .col_expr(Column::Errors, Expr::value(json!(errors)))
        .col_expr(Column::EditedAt, Expr::value(now))
        .filter(Column::JobId.eq(job.id))
        .filter(Column::RowNumber.eq(row_number))
        .filter(Column::RetriedInJobId.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if updated != 1 {
        return Err(AppError::Conflict(
            "This row was retried meanwhile; edit it in the retry.".to_owned(),
        ));
    }
    // The values may be patients' details: the trail names the columns only.
    audit::record(
        &txn,
        AuditEntry::by(actor, "import.row.update")
            .target("ImportJob", job.id)
            .changes(json!({ "rowNumber": row_number, "columns": edited })),
    )
    .await?;
    txn.commit().await?;
    actor
        .tenant()
        .find_by_id::<Entity>((job.id, row_number))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("ImportRow"))
}

/// The errors `values` would get as row `number` of `job`, checked as the
/// import checks a row (against the organisation as it is now; nothing is
/// written), under the actor's rights.
async fn recheck(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    job: &entity::import_job::Model,
    kind: ImportKind,
    number: i32,
    values: &[(String, String)],
) -> AppResult<Vec<FieldError>> {
    let prepared = crate::import::jobs::prepare(db, job).await?;
    let headers: Vec<String> = values.iter().map(|(h, _)| h.clone()).collect();
    let mapping = Mapping::check(prepared.mapping, &headers, &fields(kind))?;
    let txn = crate::db::begin_batch(db, false).await?;
    let import = Importer::new(
        &txn,
        JobContext {
            kind,
            organization: &prepared.organization,
            project: prepared.project.as_ref(),
            mapping: &mapping,
            headers: &headers,
            settings: &prepared.settings,
            started_by: Some(actor.user_id),
            public_url: "",
        },
    )
    .await?;
    let row = file::Row {
        number: usize::try_from(number).unwrap_or(0),
        cells: values.iter().map(|(_, v)| v.clone()).collect(),
        problem: None,
    };
    // One row alone repeats nothing.
    let mut earlier = Earlier::of_keys(0, std::iter::empty::<Option<String>>());
    let results = import
        .process(&txn, vec![row], &mut earlier, false, &actor.authority())
        .await?;
    txn.rollback().await?;
    Ok(results
        .into_iter()
        .next()
        .map(|r| r.errors)
        .unwrap_or_default())
}

/// Run the failed rows of an ended job that were edited since, with their
/// edited values, as a new job linked to the first (QUEUED). Its file is those
/// rows as CSV under the first file's headers, in row order.
pub async fn retry_failed_rows(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    job_id: Uuid,
) -> AppResult<entity::import_job::Model> {
    use entity::import_row::{Column, Entity};
    let job = job_in_scope(db, actor, job_id).await?;
    ensure_ended(&job, "jobId")?;
    require_rights_of(actor, &job)?;
    let rows = actor
        .tenant()
        .find::<Entity>()
        .filter(Column::JobId.eq(job.id))
        .filter(Column::Status.eq(RowStatus::Failed.as_str()))
        .filter(Column::EditedAt.is_not_null())
        .filter(Column::RetriedInJobId.is_null())
        .order_by_asc(Column::RowNumber)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Err(AppError::bad_input(
            "jobId",
            "no failed row has been edited since it was last retried: fix rows with updateImportRow first",
        ));
    }
    let mut headers: Vec<String> = Vec::new();
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        let values: Vec<(String, String)> =
            serde_json::from_value(row.row_values.clone()).unwrap_or_default();
        if headers.is_empty() {
            headers = values.iter().map(|(h, _)| h.clone()).collect();
            writer
                .write_record(&headers)
                .map_err(|e| AppError::Internal(e.into()))?;
        }
        writer
            .write_record(values.iter().map(|(_, v)| v))
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let mut settings: ImportSettings = serde_json::from_value(job.settings.clone())
        .map_err(|e| anyhow::anyhow!("stored settings unreadable: {e}"))?;
    // The stored form is a comma-separated file, whatever the first one was.
    settings.delimiter = Some(',');
    settings.sheet = None;
    settings.header_row = None;
    let retry = new_job(
        actor,
        &job,
        JobStatus::Queued,
        format!("{} (retried rows)", job.file_name),
        settings,
        i32::try_from(rows.len()).unwrap_or(i32::MAX),
    );
    let retry = entity::import_job::Model {
        retry_of_job_id: Some(job.id),
        dry_run: job.dry_run,
        ..retry
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| AppError::Internal(e.into()))?;
    let file = CsvFile::open(text, Some(b','))?;
    let (header, spans) = file.spans(CHUNK_BYTES as u64);
    let txn = crate::db::begin_write(db).await?;
    insert_job(&txn, &retry, Some((&file, header, &spans))).await?;
    let taken = actor
        .tenant()
        .update_many::<Entity>()
        .col_expr(Column::RetriedInJobId, Expr::value(retry.id))
        .filter(Column::JobId.eq(job.id))
        .filter(Column::RowNumber.is_in(rows.iter().map(|r| r.row_number)))
        .filter(Column::RetriedInJobId.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if taken != rows.len() as u64 {
        txn.rollback().await?;
        return Err(AppError::Conflict(
            "The rows were retried meanwhile.".to_owned(),
        ));
    }
    audit::record(
        &txn,
        AuditEntry::by(actor, "import.retry")
            .target("ImportJob", retry.id)
            .changes(json!({ "retryOf": job.id, "rows": rows.len() })),
    )
    .await?;
    txn.commit().await?;
    Ok(retry)
}

/// Undo an ended USERS or PROVIDERS import as a job of its own (QUEUED): see
/// [`crate::import::undo`]. It needs the rights the import needed, and each
/// record is held to the access rule as the import's rows were.
pub async fn revert(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::import_job::Model> {
    use entity::import_job::{Column, Entity};
    let job = job_in_scope(db, actor, id).await?;
    ensure_ended(&job, "id")?;
    let kind = require_rights_of(actor, &job)?;
    if !matches!(kind, ImportKind::Users | ImportKind::Providers) {
        return Err(AppError::bad_input(
            "id",
            format!(
                "is a {} import: only USERS and PROVIDERS imports can be reverted",
                kind.as_str()
            ),
        ));
    }
    if job.dry_run {
        return Err(AppError::bad_input("id", "is a dry run: it wrote nothing"));
    }
    let undoable = actor
        .tenant()
        .find::<entity::import_row::Entity>()
        .filter(entity::import_row::Column::JobId.eq(job.id))
        .filter(entity::import_row::Column::Undo.is_not_null())
        .count(db)
        .await?;
    let written = u64::try_from(job.created_count + job.updated_count).unwrap_or(0);
    if undoable < written {
        return Err(AppError::bad_input(
            "id",
            "ran before imports kept what undoing them needs, so it cannot be reverted",
        ));
    }
    if undoable == 0 {
        return Err(AppError::bad_input("id", "wrote nothing to revert"));
    }
    let revert = entity::import_job::Model {
        reverts_job_id: Some(job.id),
        ..new_job(
            actor,
            &job,
            JobStatus::Queued,
            format!("{} (reverted)", job.file_name),
            serde_json::from_value(job.settings.clone()).unwrap_or_default(),
            i32::try_from(undoable).unwrap_or(i32::MAX),
        )
    };
    let txn = crate::db::begin_write(db).await?;
    // One revert at a time per import: the reverted job's row is held until
    // this one commits (SQLite writes one transaction at a time anyway).
    let mut reverted = actor.tenant().find_by_id::<Entity>(job.id);
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        reverted = reverted.lock_exclusive();
    }
    reverted.one(&txn).await?;
    let earlier = actor
        .tenant()
        .find::<Entity>()
        .filter(Column::RevertsJobId.eq(job.id))
        .filter(
            Column::Status.is_not_in([JobStatus::Failed.as_str(), JobStatus::Cancelled.as_str()]),
        )
        .one(&txn)
        .await?;
    if let Some(earlier) = earlier {
        return Err(AppError::Conflict(format!(
            "The import is already reverted, by import {}.",
            earlier.id
        )));
    }
    insert_job(&txn, &revert, None).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "import.revert")
            .target("ImportJob", revert.id)
            .changes(json!({ "reverts": job.id, "rows": undoable })),
    )
    .await?;
    txn.commit().await?;
    Ok(revert)
}

/// Store a new job with its file (a revert has none): the header, then the
/// rows in chunks that the job reads one at a time.
async fn insert_job(
    txn: &impl ConnectionTrait,
    job: &entity::import_job::Model,
    file: Option<(&CsvFile<'_>, Range<u64>, &[Span])>,
) -> AppResult<()> {
    entity::import_job::Entity::insert(entity::import_job::ActiveModel::from(job.clone()))
        .exec_without_returning(txn)
        .await?;
    let Some((file, header, spans)) = file else {
        return Ok(());
    };
    entity::import_file::Entity::insert(entity::import_file::ActiveModel {
        job_id: Set(job.id),
        data: Set(file.text(header)?.as_bytes().to_vec()),
        chunked: Set(true),
    })
    .exec_without_returning(txn)
    .await?;
    for (seq, span) in (1..).zip(spans) {
        entity::import_file_chunk::Entity::insert(entity::import_file_chunk::ActiveModel {
            job_id: Set(job.id),
            seq: Set(seq),
            after_row: Set(i32::try_from(span.after).unwrap_or(i32::MAX)),
            row_count: Set(i32::try_from(span.rows).unwrap_or(i32::MAX)),
            data: Set(file.text(span.range.clone())?.into_owned().into_bytes()),
        })
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// A new job of `actor` that follows `job`: its kind, mapping and project.
fn new_job(
    actor: &Actor,
    job: &entity::import_job::Model,
    status: JobStatus,
    file_name: String,
    settings: ImportSettings,
    total_rows: i32,
) -> entity::import_job::Model {
    entity::import_job::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        kind: job.kind.clone(),
        status: status.as_str().to_owned(),
        file_name: file_name.chars().take(255).collect(),
        mapping: job.mapping.clone(),
        settings: json!(settings),
        project_id: job.project_id,
        dry_run: false,
        total_rows,
        processed_rows: 0,
        created_count: 0,
        updated_count: 0,
        skipped_count: 0,
        failed_count: 0,
        error_message: None,
        created_by: Some(actor.user_id),
        created_at: Utc::now(),
        started_at: None,
        finished_at: None,
        lease_owner: None,
        lease_expires_at: None,
        failed_attempts: 0,
        feed_id: None,
        retry_of_job_id: None,
        reverts_job_id: None,
    }
}

/// A mapping template to save: new, or replacing the one with `id`.
pub struct TemplateSpec {
    pub id: Option<Uuid>,
    pub kind: ImportKind,
    pub name: String,
    pub mapping: Vec<ColumnMapping>,
    pub settings: ImportSettings,
}

pub async fn save_template(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    spec: TemplateSpec,
) -> AppResult<entity::mapping_template::Model> {
    use entity::mapping_template::{Column, Entity};
    actor.require(Permission::ImportsRun)?;
    let kind = spec.kind;
    let name = text::required(&spec.name, "name", 100)?;
    let specs = fields(kind);
    // Columns are the file's business; fields and required ones are checked now.
    let columns: Vec<String> = spec.mapping.iter().map(|p| p.column.clone()).collect();
    Mapping::check(spec.mapping.clone(), &columns, &specs)?;
    if let Some(delimiter) = spec.settings.delimiter
        && ![',', ';', '\t'].contains(&delimiter)
    {
        return Err(AppError::bad_input(
            "settings.delimiter",
            "must be a comma, a semicolon or a tab",
        ));
    }
    let mut taken = actor
        .scope::<Entity>()
        .filter(Column::Kind.eq(kind.as_str()))
        .filter(Column::Name.eq(name.as_str()));
    if let Some(id) = spec.id {
        taken = taken.filter(Column::Id.ne(id));
    }
    let name_taken = || {
        AppError::Conflict(format!(
            "A {} mapping template named {name:?} already exists.",
            kind.as_str()
        ))
    };
    if taken.count(db).await? > 0 {
        return Err(name_taken());
    }
    let now = Utc::now();
    let template = match spec.id {
        Some(id) => {
            let existing = template_in_scope(db, actor, id).await?;
            let mut active: entity::mapping_template::ActiveModel = existing.into();
            active.kind = Set(kind.as_str().to_owned());
            active.name = Set(name.clone());
            active.mapping = Set(json!(spec.mapping));
            active.settings = Set(json!(spec.settings));
            active.updated_at = Set(now);
            active.update(db).await.on_unique_violation(name_taken)?
        }
        None => {
            let model = entity::mapping_template::Model {
                id: Uuid::now_v7(),
                organization_id: actor.organization_id,
                kind: kind.as_str().to_owned(),
                name: name.clone(),
                mapping: json!(spec.mapping),
                settings: json!(spec.settings),
                created_by: Some(actor.user_id),
                created_at: now,
                updated_at: now,
            };
            Entity::insert(entity::mapping_template::ActiveModel::from(model.clone()))
                .exec_without_returning(db)
                .await
                .on_unique_violation(name_taken)?;
            model
        }
    };
    audit::record(
        db,
        AuditEntry::by(actor, "mapping_template.save")
            .target("MappingTemplate", template.id)
            .changes(json!({ "name": template.name, "kind": template.kind })),
    )
    .await?;
    Ok(template)
}

pub async fn delete_template(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<()> {
    actor.require(Permission::ImportsRun)?;
    let template = template_in_scope(db, actor, id).await?;
    actor
        .tenant()
        .delete_by_id::<entity::mapping_template::Entity>(id)
        .exec(db)
        .await?;
    audit::record(
        db,
        AuditEntry::by(actor, "mapping_template.delete")
            .target("MappingTemplate", id)
            .changes(json!({ "name": template.name })),
    )
    .await
}

pub async fn templates(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    kind: Option<ImportKind>,
) -> AppResult<Vec<entity::mapping_template::Model>> {
    use entity::mapping_template::Column;
    actor.require(Permission::ImportsRun)?;
    let mut select = actor.scope::<entity::mapping_template::Entity>();
    if let Some(kind) = kind {
        select = select.filter(Column::Kind.eq(kind.as_str()));
    }
    Ok(select
        .order_by_asc(Column::Kind)
        .order_by_asc(Column::Name)
        .all(db)
        .await?)
}

async fn template_in_scope(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::mapping_template::Model> {
    actor
        .scope::<entity::mapping_template::Entity>()
        .filter(entity::mapping_template::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("MappingTemplate"))
}
