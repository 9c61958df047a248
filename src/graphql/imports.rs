//! The import center over GraphQL: fields, previews, jobs and their rows,
//! mapping templates, and the progress of a running job.

use std::time::Duration;

use async_graphql::{
    Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject, Subscription, Upload,
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream};

use super::{
    Ctx,
    connection::{
        Conn, encode_number_cursor, into_connection, into_connection_by, number_page_request,
        page_request, parse_id,
    },
    loaders::{Key, PeopleInTrail, loader_error},
    people::User,
};
use crate::{
    error::{AppError, AppResult},
    import::center::{self as imports, ImportRequest, TemplateSpec},
    import::file::Content,
    import::{
        fields::{self, FieldSpec},
        jobs::JobStatus,
        mapping,
        row::{RowResult, RowStatus},
        settings::ImportSettings,
    },
};

/// What an import loads.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Users,
    Providers,
    Patients,
    Locations,
}

impl From<ImportKind> for fields::ImportKind {
    fn from(kind: ImportKind) -> Self {
        match kind {
            ImportKind::Users => Self::Users,
            ImportKind::Providers => Self::Providers,
            ImportKind::Patients => Self::Patients,
            ImportKind::Locations => Self::Locations,
        }
    }
}

impl From<fields::ImportKind> for ImportKind {
    fn from(kind: fields::ImportKind) -> Self {
        match kind {
            fields::ImportKind::Users => Self::Users,
            fields::ImportKind::Providers => Self::Providers,
            fields::ImportKind::Patients => Self::Patients,
            fields::ImportKind::Locations => Self::Locations,
        }
    }
}

pub(super) fn kind_of(stored: &str) -> ImportKind {
    fields::ImportKind::from_stored(stored).map_or(ImportKind::Users, Into::into)
}

/// Where a job stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::import::jobs::JobStatus")]
pub enum ImportStatus {
    Queued,
    InProgress,
    Finished,
    FinishedWithErrors,
    Failed,
    Cancelled,
    /// A feed's run whose file had not changed since its last.
    Skipped,
}

/// What happened to one row.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ImportRowStatus {
    Created,
    Updated,
    Skipped,
    Failed,
}

impl From<ImportRowStatus> for RowStatus {
    fn from(status: ImportRowStatus) -> Self {
        match status {
            ImportRowStatus::Created => Self::Created,
            ImportRowStatus::Updated => Self::Updated,
            ImportRowStatus::Skipped => Self::Skipped,
            ImportRowStatus::Failed => Self::Failed,
        }
    }
}

impl From<RowStatus> for ImportRowStatus {
    fn from(status: RowStatus) -> Self {
        match status {
            RowStatus::Created => Self::Created,
            RowStatus::Updated => Self::Updated,
            RowStatus::Skipped => Self::Skipped,
            RowStatus::Failed => Self::Failed,
        }
    }
}

fn row_status_of(stored: &str) -> ImportRowStatus {
    match stored {
        "CREATED" => ImportRowStatus::Created,
        "UPDATED" => ImportRowStatus::Updated,
        "SKIPPED" => ImportRowStatus::Skipped,
        _ => ImportRowStatus::Failed,
    }
}

/// A field an import can fill.
#[derive(SimpleObject)]
pub struct ImportField {
    key: &'static str,
    label: &'static str,
    category: &'static str,
    subcategory: Option<&'static str>,
    required: bool,
    description: Option<&'static str>,
}

impl From<FieldSpec> for ImportField {
    fn from(spec: FieldSpec) -> Self {
        Self {
            key: spec.key,
            label: spec.label,
            category: spec.category,
            subcategory: spec.subcategory,
            required: spec.required,
            description: Some(spec.description),
        }
    }
}

/// One column mapped to one field.
#[derive(SimpleObject, Clone)]
pub struct ColumnMapping {
    column: String,
    field: String,
    /// Cell values read as others. In a preview's suggested mapping, the roles
    /// and employee status columns carry the translations their values suggest.
    values: Vec<ValueTranslation>,
}

impl From<mapping::ColumnMapping> for ColumnMapping {
    fn from(m: mapping::ColumnMapping) -> Self {
        Self {
            column: m.column,
            field: m.field,
            values: m.values.into_iter().map(Into::into).collect(),
        }
    }
}

/// A cell value read as another: `RN` as the role `Registered Nurse`, `Term`
/// as the status `Inactive`. `from` matches a whole cell, or one role of a
/// roles cell, case and spacing aside.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "ValueTranslationInput")]
pub struct ValueTranslation {
    pub from: String,
    pub to: String,
}

impl From<mapping::ValueTranslation> for ValueTranslation {
    fn from(t: mapping::ValueTranslation) -> Self {
        Self {
            from: t.from,
            to: t.to,
        }
    }
}

#[derive(InputObject)]
pub struct ColumnMappingInput {
    /// A header of the file, as written (case does not matter).
    pub column: String,
    /// A field key from `importFields`.
    pub field: String,
    /// Cell values of the column to read as others.
    #[graphql(default)]
    pub values: Vec<ValueTranslation>,
}

fn mapping_pairs(input: Vec<ColumnMappingInput>) -> Vec<mapping::ColumnMapping> {
    input
        .into_iter()
        .map(|m| mapping::ColumnMapping {
            column: m.column,
            field: m.field,
            values: m
                .values
                .into_iter()
                .map(|t| mapping::ValueTranslation {
                    from: t.from,
                    to: t.to,
                })
                .collect(),
        })
        .collect()
}

/// How a file is read and what the import may change.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "ImportSettingsInput")]
pub struct ImportSettingsValue {
    /// `,`, `;` or a tab (`\t`); detected from the header row when null.
    pub delimiter: Option<String>,
    /// Update existing records (true by default); when false they are skipped.
    #[graphql(default = true)]
    pub update_existing: bool,
    /// Send created users an invite to set their password.
    #[graphql(default)]
    pub send_invites: bool,
}

impl ImportSettingsValue {
    fn parse(self) -> AppResult<ImportSettings> {
        let delimiter = match self.delimiter.as_deref() {
            None | Some("") => None,
            Some(",") => Some(','),
            Some(";") => Some(';'),
            Some("\t" | "\\t" | "tab") => Some('\t'),
            Some(_) => {
                return Err(AppError::bad_input(
                    "settings.delimiter",
                    "must be a comma, a semicolon or a tab",
                ));
            }
        };
        Ok(ImportSettings {
            delimiter,
            update_existing: self.update_existing,
            send_invites: self.send_invites,
            ..ImportSettings::default()
        })
    }
}

impl From<ImportSettings> for ImportSettingsValue {
    fn from(s: ImportSettings) -> Self {
        Self {
            delimiter: s.delimiter.map(String::from),
            update_existing: s.update_existing,
            send_invites: s.send_invites,
        }
    }
}

/// A file to preview or import.
#[derive(InputObject)]
pub struct ImportInput {
    pub kind: ImportKind,
    /// A CSV file (UTF-8) or an Excel workbook (.xlsx), told apart by their
    /// content, sent by the GraphQL multipart request spec.
    pub file: Upload,
    pub mapping: Option<Vec<ColumnMappingInput>>,
    /// A saved mapping template to use instead of `mapping`.
    pub template_id: Option<ID>,
    /// The project PATIENTS imports enrol into.
    pub project_id: Option<ID>,
    /// Check and record every row's outcome, write no record.
    #[graphql(default)]
    pub dry_run: bool,
    /// Overrides the template's settings, or the defaults.
    pub settings: Option<ImportSettingsValue>,
    /// For an Excel workbook: the sheet to read (the first when absent).
    pub sheet: Option<String>,
    /// For an Excel workbook: the row naming the columns, counted from 1
    /// (the first non-empty row when absent).
    pub header_row: Option<i32>,
}

impl ImportInput {
    async fn into_request(self, ctx: &Context<'_>) -> Result<ImportRequest> {
        let upload = self.file.value(ctx).map_err(|_| {
            AppError::bad_input(
                "file",
                "is missing: send it as the GraphQL multipart request spec says",
            )
        })?;
        Ok(ImportRequest {
            kind: self.kind.into(),
            file_name: upload.filename,
            // Read in place from the file the upload was written to.
            content: Content::File(upload.content),
            mapping: self.mapping.map(mapping_pairs),
            template_id: self
                .template_id
                .as_ref()
                .map(|id| parse_id(id, "templateId"))
                .transpose()?,
            project_id: self
                .project_id
                .as_ref()
                .map(|id| parse_id(id, "projectId"))
                .transpose()?,
            settings: self.settings.map(ImportSettingsValue::parse).transpose()?,
            sheet: self.sheet,
            header_row: self
                .header_row
                .map(|n| {
                    usize::try_from(n)
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| AppError::bad_input("headerRow", "counts from 1"))
                })
                .transpose()?,
            dry_run: self.dry_run,
            feed_id: None,
        })
    }
}

/// One invalid field of a row.
#[derive(SimpleObject)]
pub struct FieldError {
    field: String,
    message: String,
}

/// One data row and what became of it.
pub struct ImportRow {
    row_number: i32,
    status: ImportRowStatus,
    record_id: Option<String>,
    errors: Vec<crate::error::FieldError>,
    values: Vec<(String, String)>,
    edited_at: Option<DateTime<Utc>>,
    retried_in_job_id: Option<uuid::Uuid>,
}

#[Object]
impl ImportRow {
    /// As a spreadsheet counts: the header is row 1.
    async fn row_number(&self) -> i32 {
        self.row_number
    }
    async fn status(&self) -> ImportRowStatus {
        self.status
    }
    /// The created or updated record.
    async fn record_id(&self) -> Option<ID> {
        self.record_id.clone().map(ID)
    }
    async fn errors(&self) -> Vec<FieldError> {
        self.errors
            .iter()
            .map(|e| FieldError {
                field: e.field.clone(),
                message: e.message.clone(),
            })
            .collect()
    }
    /// When a failed row's values were last edited with `updateImportRow`.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.edited_at
    }
    /// The job that retried this failed row (`retryFailedRows`), once retried.
    async fn retried_in_job_id(&self) -> Option<ID> {
        self.retried_in_job_id.map(|id| ID(id.to_string()))
    }
    /// The original cells by header, in the file's column order (as edited,
    /// for a failed row edited in the log).
    async fn values(&self) -> Json<serde_json::Map<String, serde_json::Value>> {
        Json(
            self.values
                .iter()
                .map(|(h, v)| (h.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

impl From<entity::import_row::Model> for ImportRow {
    fn from(row: entity::import_row::Model) -> Self {
        Self {
            row_number: row.row_number,
            status: row_status_of(&row.status),
            record_id: row.record_id,
            errors: serde_json::from_value(row.errors).unwrap_or_default(),
            values: serde_json::from_value(row.row_values).unwrap_or_default(),
            edited_at: row.edited_at,
            retried_in_job_id: row.retried_in_job_id,
        }
    }
}

impl From<RowResult> for ImportRow {
    fn from(row: RowResult) -> Self {
        Self {
            row_number: i32::try_from(row.number).unwrap_or(i32::MAX),
            status: row.status.into(),
            record_id: row.record_id.map(|id| id.to_string()),
            errors: row.errors,
            values: row.values,
            edited_at: None,
            retried_in_job_id: None,
        }
    }
}

/// What a file would give; nothing was written.
#[derive(SimpleObject)]
pub struct ImportPreview {
    headers: Vec<String>,
    suggested_mapping: Vec<ColumnMapping>,
    missing_required_fields: Vec<String>,
    /// An Excel workbook's sheets, in order; empty for a CSV file.
    sheets: Vec<String>,
    total_rows: u64,
    /// The first rows, each with the errors it would get.
    sample_rows: Vec<ImportRow>,
    valid_rows: u64,
    invalid_rows: u64,
}

/// A mapping as jobs and templates store it.
fn stored_mapping(stored: &serde_json::Value) -> Vec<ColumnMapping> {
    serde_json::from_value::<Vec<mapping::ColumnMapping>>(stored.clone())
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}

/// Settings as jobs and templates store them.
fn stored_settings(stored: &serde_json::Value) -> ImportSettingsValue {
    serde_json::from_value::<ImportSettings>(stored.clone())
        .unwrap_or_default()
        .into()
}

/// An import job.
pub struct ImportJob(pub entity::import_job::Model);

#[Object]
impl ImportJob {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> ImportKind {
        kind_of(&self.0.kind)
    }
    async fn status(&self) -> ImportStatus {
        ImportStatus::from(JobStatus::from_stored(&self.0.status))
    }
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    /// The feed whose run this is, if any.
    async fn feed(&self, ctx: &Context<'_>) -> Result<Option<ImportFeed>> {
        let state = ctx.state()?;
        Ok(crate::import::feeds::of_job(&state.db, &self.0)
            .await?
            .map(|feed| ImportFeed::new(feed, &state.feeds())))
    }
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }
    /// The job whose edited failed rows this job retries (`retryFailedRows`).
    async fn retry_of(&self, ctx: &Context<'_>) -> Result<Option<ImportJob>> {
        self.related(ctx, self.0.retry_of_job_id).await
    }
    /// The job this job undoes (`revertImport`). Its rows are the undone job's
    /// written rows: UPDATED when undone, SKIPPED when the record was changed
    /// after the import (the changed fields as errors), FAILED when refused.
    async fn reverts(&self, ctx: &Context<'_>) -> Result<Option<ImportJob>> {
        self.related(ctx, self.0.reverts_job_id).await
    }
    async fn total_rows(&self) -> i32 {
        self.0.total_rows
    }
    async fn processed_rows(&self) -> i32 {
        self.0.processed_rows
    }
    async fn created_count(&self) -> i32 {
        self.0.created_count
    }
    async fn updated_count(&self) -> i32 {
        self.0.updated_count
    }
    async fn skipped_count(&self) -> i32 {
        self.0.skipped_count
    }
    async fn failed_count(&self) -> i32 {
        self.0.failed_count
    }
    /// From 0 to 1.
    async fn progress(&self) -> f64 {
        if self.0.total_rows == 0 {
            return if JobStatus::from_stored(&self.0.status).is_final() {
                1.0
            } else {
                0.0
            };
        }
        (f64::from(self.0.processed_rows) / f64::from(self.0.total_rows)).clamp(0.0, 1.0)
    }
    /// Why the file itself could not be processed (FAILED).
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    async fn mapping(&self) -> Vec<ColumnMapping> {
        stored_mapping(&self.0.mapping)
    }
    async fn settings(&self) -> ImportSettingsValue {
        stored_settings(&self.0.settings)
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        let user = ctx
            .data::<DataLoader<PeopleInTrail>>()?
            .load_one(Key::within(self.0.organization_id, id))
            .await
            .map_err(loader_error)?;
        Ok(user.map(User::from))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// Every row's outcome, in row order.
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn rows(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<ImportRowStatus>,
    ) -> Result<Conn<ImportRow>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = number_page_request(ctx, first, after.as_deref())?;
        let page = imports::rows(&state.db, actor, &self.0, status.map(Into::into), page).await?;
        Ok(into_connection_by(
            page,
            |row| encode_number_cursor(row.row_number),
            ImportRow::from,
        ))
    }
    /// The failed rows as CSV, with an Errors column; null when no row failed.
    async fn failed_rows_csv_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.failed_rows_url(ctx, "csv")?)
    }
    /// The failed rows as XLSX, with an Errors column; null when no row failed.
    async fn failed_rows_xlsx_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.failed_rows_url(ctx, "xlsx")?)
    }
}

impl ImportJob {
    async fn related(&self, ctx: &Context<'_>, id: Option<uuid::Uuid>) -> Result<Option<Self>> {
        let Some(id) = id else {
            return Ok(None);
        };
        let actor = ctx.caller()?.actor()?;
        Ok(imports::find(&ctx.state()?.db, actor, id).await?.map(Self))
    }

    fn failed_rows_url(&self, ctx: &Context<'_>, extension: &str) -> AppResult<Option<String>> {
        let state = ctx.state()?;
        Ok((self.0.failed_count > 0).then(|| {
            format!(
                "{}/imports/{}/failed-rows.{extension}",
                state.public_url, self.0.id
            )
        }))
    }
}

/// A saved mapping with its settings.
pub struct MappingTemplate(entity::mapping_template::Model);

#[Object]
impl MappingTemplate {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> ImportKind {
        kind_of(&self.0.kind)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn mapping(&self) -> Vec<ColumnMapping> {
        stored_mapping(&self.0.mapping)
    }
    async fn settings(&self) -> ImportSettingsValue {
        stored_settings(&self.0.settings)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A template to save: with `id`, it replaces that template.
#[derive(InputObject)]
pub struct MappingTemplateInput {
    pub id: Option<ID>,
    pub kind: ImportKind,
    pub name: String,
    pub mapping: Vec<ColumnMappingInput>,
    pub settings: Option<ImportSettingsValue>,
}

/// What `importJobs` may be narrowed by.
#[derive(InputObject, Default)]
pub struct ImportJobFilter {
    pub kind: Option<ImportKind>,
    pub status: Option<ImportStatus>,
}

#[derive(Default)]
pub struct ImportQuery;

#[Object]
impl ImportQuery {
    /// The fields an import of `kind` can fill, required ones first.
    async fn import_fields(&self, ctx: &Context<'_>, kind: ImportKind) -> Result<Vec<ImportField>> {
        ctx.caller()?.actor()?;
        Ok(fields::fields(kind.into())
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The organisation's mapping templates (IMPORTS_RUN).
    async fn mapping_templates(
        &self,
        ctx: &Context<'_>,
        kind: Option<ImportKind>,
    ) -> Result<Vec<MappingTemplate>> {
        let actor = ctx.caller()?.actor()?;
        Ok(
            imports::templates(&ctx.state()?.db, actor, kind.map(Into::into))
                .await?
                .into_iter()
                .map(MappingTemplate)
                .collect(),
        )
    }

    /// The organisation's import jobs, oldest first (IMPORTS_RUN).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn import_jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ImportJobFilter>,
    ) -> Result<Conn<ImportJob>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = imports::JobFilter {
            kind: filter.kind.map(Into::into),
            status: filter
                .status
                .map(|s| JobStatus::from(s).as_str().to_owned()),
        };
        let page = imports::list(&state.db, actor, filter, page).await?;
        Ok(into_connection(page, |m| m.id, ImportJob))
    }

    /// One job of the organisation; null for an unknown id or another organisation's.
    async fn import_job(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ImportJob>> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(imports::find(&ctx.state()?.db, actor, id)
            .await?
            .map(ImportJob))
    }
}

#[derive(Default)]
pub struct ImportMutation;

#[Object]
impl ImportMutation {
    /// Read, map and check a whole file; nothing is written (IMPORTS_RUN).
    async fn preview_import(&self, ctx: &Context<'_>, input: ImportInput) -> Result<ImportPreview> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        actor.require(crate::auth::Permission::ImportsRun)?;
        let request = input.into_request(ctx).await?;
        let preview = imports::preview(&state.db, actor, request).await?;
        Ok(ImportPreview {
            headers: preview.headers,
            suggested_mapping: preview
                .suggested_mapping
                .into_iter()
                .map(Into::into)
                .collect(),
            missing_required_fields: preview.missing_required_fields,
            sheets: preview.sheets,
            total_rows: preview.total_rows as u64,
            sample_rows: preview.sample_rows.into_iter().map(Into::into).collect(),
            valid_rows: preview.valid_rows as u64,
            invalid_rows: preview.invalid_rows as u64,
        })
    }

    /// Store the file and start the import in the background; returns at once,
    /// QUEUED (IMPORTS_RUN). Without `mapping` or `templateId` the suggested
    /// mapping is used.
    async fn start_import(&self, ctx: &Context<'_>, input: ImportInput) -> Result<ImportJob> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        actor.require(crate::auth::Permission::ImportsRun)?;
        let request = input.into_request(ctx).await?;
        let job = imports::start(&state.db, actor, request).await?;
        Ok(ImportJob(job))
    }

    /// Stop a queued or running import; committed batches stay.
    async fn cancel_import(&self, ctx: &Context<'_>, id: ID) -> Result<ImportJob> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(ImportJob(
            imports::cancel(&ctx.state()?.db, actor, id).await?,
        ))
    }

    /// Edit a failed row's values in the log, by header (only the headers
    /// given change), and check it again at once: it comes back with its new
    /// errors, or none when it would now go in. The job must have ended; the
    /// rights are those its import needed.
    async fn update_import_row(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        row_number: i32,
        values: Json<serde_json::Value>,
    ) -> Result<ImportRow> {
        let actor = ctx.caller()?.actor()?;
        let job_id = parse_id(&job_id, "jobId")?;
        let serde_json::Value::Object(edits) = values.0 else {
            return Err(AppError::bad_input(
                "values",
                "must be an object of cells by header, such as {\"Email\": \"ana@example.org\"}",
            )
            .into());
        };
        let row = imports::update_row(&ctx.state()?.db, actor, job_id, row_number, edits).await?;
        Ok(row.into())
    }

    /// Run the job's failed rows edited since with `updateImportRow` as a new
    /// job (QUEUED) whose `retryOf` is this one.
    async fn retry_failed_rows(&self, ctx: &Context<'_>, job_id: ID) -> Result<ImportJob> {
        let actor = ctx.caller()?.actor()?;
        let job_id = parse_id(&job_id, "jobId")?;
        Ok(ImportJob(
            imports::retry_failed_rows(&ctx.state()?.db, actor, job_id).await?,
        ))
    }

    /// Undo an ended USERS or PROVIDERS import as a job of its own (QUEUED):
    /// users it created are removed (deactivated, their sessions ended, when
    /// they have used their account), fields it changed get their earlier
    /// values back, roles it gave are taken away. A record changed since by
    /// anyone is left alone and reported among the job's rows. Needs the
    /// rights the import needed.
    async fn revert_import(&self, ctx: &Context<'_>, id: ID) -> Result<ImportJob> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(ImportJob(
            imports::revert(&ctx.state()?.db, actor, id).await?,
        ))
    }

    /// Create a mapping template, or replace the one with `id`.
    async fn save_mapping_template(
        &self,
        ctx: &Context<'_>,
        input: MappingTemplateInput,
    ) -> Result<MappingTemplate> {
        let actor = ctx.caller()?.actor()?;
        let spec = TemplateSpec {
            id: input.id.as_ref().map(|id| parse_id(id, "id")).transpose()?,
            kind: input.kind.into(),
            name: input.name,
            mapping: mapping_pairs(input.mapping),
            settings: input
                .settings
                .map(ImportSettingsValue::parse)
                .transpose()?
                .unwrap_or_default(),
        };
        Ok(MappingTemplate(
            imports::save_template(&ctx.state()?.db, actor, spec).await?,
        ))
    }

    async fn delete_mapping_template(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        imports::delete_template(&ctx.state()?.db, actor, id).await?;
        Ok(true)
    }
}

#[derive(Default)]
pub struct ImportSubscription;

#[Subscription]
impl ImportSubscription {
    /// The job as it runs: a value at least every second while it is queued or
    /// running, and the final one, then the stream ends.
    async fn import_job_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = ImportJob>> {
        let state = ctx.state()?.clone();
        let actor = ctx.caller()?.actor()?.clone();
        let id = parse_id(&id, "id")?;
        imports::find(&state.db, &actor, id)
            .await?
            .ok_or(AppError::NotFound("ImportJob"))?;
        Ok(stream::unfold(Some(()), move |more| {
            let (state, actor) = (state.clone(), actor.clone());
            async move {
                more?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let job = imports::find(&state.db, &actor, id).await.ok().flatten()?;
                let done = JobStatus::from_stored(&job.status).is_final();
                Some((ImportJob(job), (!done).then_some(())))
            }
        })
        .boxed())
    }
}

/// An import that fetches its file from a URL on a schedule; each run is an
/// import job (`ImportJob.feed`).
pub struct ImportFeed {
    model: entity::import_feed::Model,
    header_names: Vec<String>,
}

impl ImportFeed {
    pub fn new(model: entity::import_feed::Model, feeds: &crate::import::feeds::Feeds) -> Self {
        let header_names = feeds.header_names(&model);
        Self {
            model,
            header_names,
        }
    }
}

#[Object]
impl ImportFeed {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.model.name
    }
    async fn kind(&self) -> ImportKind {
        kind_of(&self.model.kind)
    }
    async fn url(&self) -> &str {
        &self.model.url
    }
    /// The mapping template each run reads the file with.
    async fn template_id(&self) -> ID {
        ID(self.model.template_id.to_string())
    }
    async fn project_id(&self) -> Option<ID> {
        self.model.project_id.map(|id| ID(id.to_string()))
    }
    /// Cron syntax (minute hour day month weekday, or with seconds first),
    /// in the organisation's time zone.
    async fn schedule(&self) -> &str {
        &self.model.schedule
    }
    async fn active(&self) -> bool {
        self.model.active
    }
    async fn next_run_at(&self) -> Option<DateTime<Utc>> {
        self.model.next_run_at
    }
    /// The names of the request headers sent; their values are kept
    /// encrypted and never shown.
    async fn header_names(&self) -> &[String] {
        &self.header_names
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}
