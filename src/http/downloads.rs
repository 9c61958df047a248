//! File downloads outside GraphQL: the failed rows of an import, as CSV or XLSX.
//! Authenticated like GraphQL (bearer token, or the cookie with the CSRF header),
//! scoped to the caller's organisation, and sent as attachments with a safe name.

use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Path},
};

use super::{Presented, acting_organization, graphql::CSRF_HEADER, origin_of, presented_token};
use crate::{
    auth::Actor,
    error::{AppError, AppResult},
    import::{
        center as imports,
        export::{table_csv, table_xlsx},
        fields::ImportKind,
        staff_export as exports, templates,
    },
    services::audit,
    state::AppState,
};

#[handler]
pub async fn failed_rows(
    req: &Request,
    Path((id, file)): Path<(String, String)>,
    state: Data<&AppState>,
) -> Response {
    let xlsx = match file.as_str() {
        "failed-rows.csv" => false,
        "failed-rows.xlsx" => true,
        _ => return plain(StatusCode::NOT_FOUND, "No such file."),
    };
    let result = async {
        let actor = caller(req, &state).await?;
        let id = id.parse().map_err(|_| AppError::NotFound("ImportJob"))?;
        imports::failed_rows_file(&state.db, &actor, id, xlsx).await
    }
    .await;
    match result {
        Ok(Some((name, content_type, bytes))) => attachment(&name, content_type, bytes),
        Ok(None) => plain(StatusCode::NOT_FOUND, "No row of this import failed."),
        Err(err) => refused(err),
    }
}

/// The blank template of an import kind: `GET /imports/templates/{kind}.csv`
/// or `.xlsx` (IMPORTS_RUN).
#[handler]
pub async fn template(req: &Request, Path(file): Path<String>, state: Data<&AppState>) -> Response {
    let Some((kind, format)) = kind_and_format(&file) else {
        return plain(StatusCode::NOT_FOUND, "No such template.");
    };
    if let Err(err) = async {
        caller(req, &state)
            .await?
            .require(crate::auth::Permission::ImportsRun)
    }
    .await
    {
        return refused(err);
    }
    let bytes = match format {
        Format::Csv => templates::csv(kind),
        Format::Xlsx => templates::xlsx(kind),
    };
    match bytes {
        Ok(bytes) => attachment(
            &format!(
                "rollcall-{}-template.{}",
                kind.as_str().to_lowercase(),
                format.extension()
            ),
            format.content_type(),
            bytes,
        ),
        Err(err) => refused(AppError::Internal(err)),
    }
}

/// The organisation's staff in the import's own format, to edit and upload
/// again: `GET /exports/users.csv` or `.xlsx` (USERS_READ), `/exports/providers.…`
/// (PROVIDERS_READ).
#[handler]
pub async fn staff(req: &Request, Path(file): Path<String>, state: Data<&AppState>) -> Response {
    let Some((kind @ (ImportKind::Users | ImportKind::Providers), format)) = kind_and_format(&file)
    else {
        return plain(StatusCode::NOT_FOUND, "No such export.");
    };
    let result = async {
        let actor = caller(req, &state).await?;
        let table = exports::staff(&state.db, &actor, kind).await?;
        let bytes = match format {
            Format::Csv => table_csv(&table.headers, &table.rows),
            Format::Xlsx => table_xlsx("Staff", &table.headers, &table.rows),
        };
        bytes.map_err(AppError::Internal)
    }
    .await;
    match result {
        Ok(bytes) => attachment(
            &format!(
                "rollcall-{}-{}.{}",
                kind.as_str().to_lowercase(),
                chrono::Utc::now().format("%Y-%m-%d"),
                format.extension()
            ),
            format.content_type(),
            bytes,
        ),
        Err(err) => refused(err),
    }
}

/// The organisation's audit trail as newline-delimited JSON, streamed:
/// `GET /exports/audit.ndjson?from=&to=` (RFC 3339 times, `to` exclusive;
/// AUDIT_READ, and a recent second factor when the caller has one).
#[handler]
pub async fn audit_trail(req: &Request, state: Data<&AppState>) -> Response {
    let time = |name: &'static str| -> AppResult<Option<chrono::DateTime<chrono::Utc>>> {
        let value = req
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned());
        value
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.to_utc())
                    .map_err(|_| {
                        AppError::bad_input(
                            name,
                            "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
                        )
                    })
            })
            .transpose()
    };
    let result = async {
        let (from, to) = (time("from")?, time("to")?);
        let actor = caller(req, &state).await?;
        audit::export(&state.db, &actor, from, to).await
    }
    .await;
    match result {
        Ok(lines) => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/x-ndjson")
            .header(
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"rollcall-audit-{}.ndjson\"",
                    chrono::Utc::now().format("%Y-%m-%d")
                ),
            )
            .header(header::CACHE_CONTROL, "no-store")
            .header("x-content-type-options", "nosniff")
            .body(poem::Body::from_bytes_stream(lines)),
        Err(err) => refused(err),
    }
}

/// An access review's outcome as CSV: `GET /exports/access-reviews/{id}.csv`
/// (those who may see the review).
#[handler]
pub async fn access_review(
    req: &Request,
    Path(file): Path<String>,
    state: Data<&AppState>,
) -> Response {
    let Some(id) = file
        .strip_suffix(".csv")
        .and_then(|id| id.parse::<uuid::Uuid>().ok())
    else {
        return plain(StatusCode::NOT_FOUND, "No such export.");
    };
    let result = async {
        let actor = caller(req, &state).await?;
        let (review, headers, rows) =
            crate::services::access_reviews::outcome_table(&state.db, &actor, id).await?;
        let bytes = table_csv(&headers, &rows).map_err(AppError::Internal)?;
        Ok::<_, AppError>((review, bytes))
    }
    .await;
    match result {
        Ok((review, bytes)) => attachment(
            &format!("rollcall-access-review-{}.csv", review.id),
            Format::Csv.content_type(),
            bytes,
        ),
        Err(err) => refused(err),
    }
}

/// The two spreadsheet formats downloads come in.
#[derive(Clone, Copy)]
enum Format {
    Csv,
    Xlsx,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// The import kind and format a file name such as `users.xlsx` asks for.
fn kind_and_format(file: &str) -> Option<(ImportKind, Format)> {
    let (kind, extension) = file.rsplit_once('.')?;
    let kind = ImportKind::from_stored(&kind.to_uppercase())?;
    let format = match extension {
        "csv" => Format::Csv,
        "xlsx" => Format::Xlsx,
        _ => return None,
    };
    Some((kind, format))
}

/// A file to save, never to render: people's data is not cached on the way.
fn attachment(name: &str, content_type: &str, bytes: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type(content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(bytes)
}

/// A refusal as plain text with the matching HTTP status.
pub(super) fn refused(err: AppError) -> Response {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    plain(status, &async_graphql::Error::from(err).message)
}

/// The caller, as GraphQL would see them; a cookie needs the CSRF header here.
pub(super) async fn caller(req: &Request, state: &AppState) -> AppResult<Actor> {
    let organization =
        acting_organization(req).map_err(|m| AppError::bad_input("organization", m))?;
    let token = match presented_token(req) {
        Presented::Client(token) => {
            let actor = state
                .auth
                .client_actor(
                    &token,
                    organization,
                    origin_of(req),
                    &format!("GET {}", req.uri().path()),
                )
                .await?
                .ok_or(AppError::Unauthenticated)?;
            return Ok(actor);
        }
        Presented::Bearer(token) => token,
        Presented::Cookie(token) if req.headers().contains_key(CSRF_HEADER) => token,
        Presented::Cookie(_) => {
            return Err(AppError::forbidden(format!(
                "Cookie-authenticated downloads must send the {CSRF_HEADER} header."
            )));
        }
        Presented::None | Presented::Malformed => return Err(AppError::Unauthenticated),
    };
    let actor = state
        .auth
        .actor_for(&token, organization, origin_of(req))
        .await?
        .ok_or(AppError::Unauthenticated)?;
    actor.ensure_ready()?;
    Ok(actor)
}

pub(super) fn plain(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .body(message.to_owned())
}
