//! GraphQL over HTTP, following the GraphQL over HTTP specification.
//!
//! async-graphql-poem answers everything with `application/json` and status 200;
//! this handler adds what the specification asks beyond that: it serves
//! `application/graphql-response+json` to clients that accept it, with 4xx for
//! requests that cannot execute, refuses mutations over GET (405), unsupported
//! media types (415) and unacceptable `Accept` headers (406), and enforces our
//! limits (body size, batch size, aliases) before any database work. It also
//! authenticates the caller: a session store outage answers 503, never access.

use std::time::Instant;

use async_graphql::{
    BatchRequest, BatchResponse, ServerError,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use poem::{
    Body, IntoResponse, Request, Response, handler,
    http::{HeaderValue, Method, StatusCode, header},
    web::Data,
};
use serde_json::json;

use super::{
    Presented, acting_organization, graphiql, metrics, multipart::MultipartError, origin_of,
    presented_token,
};
use crate::{
    auth::Caller,
    auth::cookies,
    graphql::{AppSchema, count_aliases, limits::data_depth},
    state::AppState,
};

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
pub const CSRF_HEADER: &str = "x-rollcall-csrf";

/// How the session was presented, kept after the token is moved out.
#[derive(Clone, Copy)]
enum PresentedKind {
    Cookie,
    Other,
}

impl PresentedKind {
    fn of(presented: &Presented) -> Self {
        match presented {
            Presented::Cookie(_) => Self::Cookie,
            _ => Self::Other,
        }
    }
}

/// The media type the response is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    GraphqlResponseJson,
    Json,
}

impl Media {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// Pick the response media type from `Accept`: the specification's own type when
/// the client accepts it, else JSON; `None` when neither is acceptable.
pub fn negotiate(accept: Option<&str>) -> Option<Media> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Media::Json);
    };
    let mut json = false;
    let mut graphql_response = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        if refused {
            continue;
        }
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => graphql_response = true,
            "application/json" | "application/*" | "*/*" => json = true,
            _ => {}
        }
    }
    if graphql_response {
        Some(Media::GraphqlResponseJson)
    } else if json {
        Some(Media::Json)
    } else {
        None
    }
}

/// A request refused before execution.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
    /// Seconds to wait, for a rate-limited request.
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    /// A refusal carrying an application error, with the status its code implies.
    fn from_error(err: crate::error::AppError) -> Self {
        let retry_after = match err {
            crate::error::AppError::RateLimited {
                retry_after_seconds,
            } => Some(retry_after_seconds),
            _ => None,
        };
        let code = err.code();
        let status =
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Through the one conversion that logs internal causes and hides them.
        let message = async_graphql::Error::from(err).message;
        Self {
            retry_after,
            ..Self::new(status, code, message)
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message)
    }

    fn into_response(self, media: Media) -> Response {
        let mut extensions = json!({ "code": self.code });
        if self.code == "BAD_USER_INPUT" {
            extensions["fields"] = json!([{ "field": "request", "message": self.message }]);
        }
        let body = json!({ "errors": [{ "message": self.message, "extensions": extensions }] });
        let mut response = Response::builder()
            .status(self.status)
            .content_type(media.content_type())
            .body(body.to_string());
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[handler]
pub async fn endpoint(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    schema: Data<&AppSchema>,
) -> Response {
    let started = Instant::now();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if req.method() == Method::GET
        && req.uri().query().is_none_or(str::is_empty)
        && accept.is_some_and(|a| a.contains("text/html"))
    {
        return if state.config.graphiql {
            graphiql::page()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    let Some(media) = negotiate(accept) else {
        metrics::record_request("unknown", "rejected", started.elapsed().as_secs_f64());
        return Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            "BAD_USER_INPUT",
            "Accept application/graphql-response+json or application/json.",
        )
        .into_response(Media::Json);
    };
    match serve(req, body, &state, &schema, media).await {
        Ok((response, operation, outcome)) => {
            metrics::record_request(operation, outcome, started.elapsed().as_secs_f64());
            response
        }
        Err(refusal) => {
            let outcome = if refusal.status == StatusCode::SERVICE_UNAVAILABLE {
                "unavailable"
            } else {
                "rejected"
            };
            metrics::record_request("unknown", outcome, started.elapsed().as_secs_f64());
            refusal.into_response(media)
        }
    }
}

async fn serve(
    req: &Request,
    body: Body,
    state: &AppState,
    schema: &AppSchema,
    media: Media,
) -> Result<(Response, &'static str, &'static str), Refusal> {
    let config = &state.config;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let is_json_body = content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("application/json"));
    let is_get = req.method() == Method::GET;

    let presented = presented_token(req);
    let presented_kind = PresentedKind::of(&presented);
    if matches!(presented, Presented::Cookie(_))
        && !is_json_body
        && !req.headers().contains_key(CSRF_HEADER)
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!(
                "Cookie-authenticated requests that are not application/json must send the {CSRF_HEADER} header."
            ),
        ));
    }

    let mut batch = if is_get {
        async_graphql::http::parse_query_string(req.uri().query().unwrap_or_default())
            .map(BatchRequest::Single)
            .map_err(|e| {
                Refusal::bad_request(format!("Invalid GraphQL request in the query string: {e}"))
            })?
    } else if req.method() == Method::POST {
        read_body(body, content_type.as_deref(), config).await?
    } else {
        let mut refusal = Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "Use GET or POST.",
        );
        refusal.allow = Some("GET, POST");
        return Err(refusal);
    };

    let count = batch.iter().count();
    if count == 0 || count > config.max_batch {
        return Err(Refusal::bad_request(format!(
            "A batch must hold 1 to {} operations; this one holds {count}.",
            config.max_batch
        )));
    }

    // PostgreSQL cannot store U+0000 in text, and no field of Rollcall means it:
    // refuse it once here rather than let it reach a query.
    if batch
        .iter()
        .any(|r| r.query.contains('\0') || r.variables.values().any(holds_nul))
    {
        return Err(Refusal::bad_request(
            "Text may not contain the NUL character (U+0000).",
        ));
    }

    let mut operation = "unknown";
    for request in batch.iter_mut() {
        let operation_name = request.operation_name.clone();
        let Ok(document) = crate::graphql::parsed_document(request) else {
            // Execution reports the syntax error with its location.
            continue;
        };
        let aliases = count_aliases(document);
        if aliases > config.max_aliases {
            return Err(Refusal::bad_request(format!(
                "The request uses {aliases} aliases; at most {} are allowed.",
                config.max_aliases
            )));
        }
        if data_depth(document) > config.max_depth {
            return Err(Refusal::bad_request(format!(
                "The query is nested deeper than {} levels.",
                config.max_depth
            )));
        }
        match selected_operation(document, operation_name.as_deref()) {
            Some(OperationType::Mutation) if is_get => {
                let mut refusal = Refusal::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "BAD_USER_INPUT",
                    "Mutations must be sent with POST.",
                );
                refusal.allow = Some("POST");
                return Err(refusal);
            }
            Some(OperationType::Subscription) => {
                return Err(Refusal::bad_request(
                    "Subscriptions are served over the websocket at /graphql/ws.",
                ));
            }
            Some(OperationType::Mutation) => operation = "mutation",
            Some(OperationType::Query) if operation == "unknown" => operation = "query",
            _ => {}
        }
    }

    let origin = origin_of(req);
    let acting_in = acting_organization(req).map_err(Refusal::bad_request)?;
    let mut clear_cookie = false;
    let (actor, token) = match presented {
        Presented::Bearer(token) | Presented::Cookie(token) => {
            let actor = state
                .auth
                .actor_for(&token, acting_in, origin.clone())
                .await
                .map_err(Refusal::from_error)?;
            clear_cookie = actor.is_none() && matches!(presented_kind, PresentedKind::Cookie);
            let token = actor.is_some().then_some(token);
            (actor, token)
        }
        Presented::Client(token) => {
            let actor = state
                .auth
                .client_actor(
                    &token,
                    acting_in,
                    origin.clone(),
                    &format!("GraphQL {operation} {}", operation_names(&batch)),
                )
                .await
                .map_err(Refusal::from_error)?;
            (actor, None)
        }
        Presented::Malformed => {
            clear_cookie = super::session_cookie(req).is_some();
            (None, None)
        }
        Presented::None => (None, None),
    };

    let batch = batch.data(Caller {
        actor,
        origin,
        token,
    });
    // A request past its deadline is dropped with its open transactions, which
    // roll back: a stuck dependency cannot hold a connection forever.
    let deadline = config.request_timeout();
    let mut response = tokio::time::timeout(deadline, schema.execute_batch(batch))
        .await
        .map_err(|_| {
            tracing::warn!(operation, "request stopped at its deadline");
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                format!(
                    "The request took longer than {} seconds and was stopped; try again shortly.",
                    deadline.as_secs()
                ),
            )
        })?;
    if operation == "mutation" {
        // What a mutation queued (an email, an import job) goes out at once,
        // not at the workers' next poll; its transaction has committed.
        state.outbox_wake.notify_one();
        state.import_wake.notify_one();
    }
    let (status, outcome) = finish(&mut response, media);

    let mut http = Response::builder()
        .status(status)
        .content_type(media.content_type())
        .body(response_body(&response, status));
    let headers = match &response {
        BatchResponse::Single(r) => vec![r.http_headers.clone()],
        BatchResponse::Batch(rs) => rs.iter().map(|r| r.http_headers.clone()).collect(),
    };
    for map in headers {
        for (name, value) in &map {
            http.headers_mut().append(name, value.clone());
        }
    }
    if clear_cookie
        && !http.headers().contains_key(header::SET_COOKIE)
        && let Ok(value) =
            HeaderValue::from_str(&cookies::clear_session_cookie(config.secure_cookies))
    {
        http.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok((http, operation, outcome))
}

/// The JSON body, written straight from the response, its fields in the order
/// the operation selected them. A page of users is thousands of values: a
/// `serde_json::Value` tree of them, built only to be printed, cost as much as
/// reading them from the database. A request that could not execute (400) has
/// no `data` entry at all.
fn response_body(response: &BatchResponse, status: StatusCode) -> Vec<u8> {
    if status != StatusCode::BAD_REQUEST {
        return serde_json::to_vec(response).unwrap_or_default();
    }
    let mut value = serde_json::to_value(response).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.remove("data");
    }
    value.to_string().into_bytes()
}

async fn read_body(
    body: Body,
    content_type: Option<&str>,
    config: &crate::config::Config,
) -> Result<BatchRequest, Refusal> {
    match content_type {
        Some(ct) if ct.starts_with("application/json") => {
            let bytes = body
                .into_bytes_limit(config.max_body_bytes)
                .await
                .map_err(|_| {
                    Refusal::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "BAD_USER_INPUT",
                        format!(
                            "The request body is larger than {} bytes.",
                            config.max_body_bytes
                        ),
                    )
                })?;
            serde_json::from_slice::<BatchRequest>(&bytes).map_err(|e| {
                Refusal::bad_request(format!("The body is not a GraphQL request: {e}"))
            })
        }
        Some(ct) if ct.starts_with("multipart/form-data") => {
            super::multipart::read(body, ct, config.max_body_bytes, config.max_upload_bytes)
                .await
                .map_err(|e| match e {
                    MultipartError::TooLarge(message) => {
                        Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "BAD_USER_INPUT", message)
                    }
                    MultipartError::Invalid(reason) => {
                        Refusal::bad_request(format!("Invalid multipart request: {reason}"))
                    }
                })
        }
        _ => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "Send application/json (or multipart/form-data for uploads).",
        )),
    }
}

/// Give every error a code, and choose the status the specification prescribes.
fn finish(response: &mut BatchResponse, media: Media) -> (StatusCode, &'static str) {
    let mut unavailable = false;
    let mut request_error = false;
    let mut any_error = false;
    let responses: Vec<&mut async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter_mut().collect(),
    };
    let single = responses.len() == 1;
    for r in responses {
        for error in &mut r.errors {
            any_error = true;
            add_code(error);
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .cloned();
            if code == Some(async_graphql::Value::from("SERVICE_UNAVAILABLE")) {
                unavailable = true;
            }
        }
        // No data at all and no error tied to a field: the request could not execute.
        if single
            && r.data == async_graphql::Value::Null
            && !r.errors.is_empty()
            && r.errors.iter().all(|e| e.path.is_empty())
        {
            request_error = true;
        }
    }
    let outcome = if any_error { "error" } else { "ok" };
    if unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if request_error && media == Media::GraphqlResponseJson {
        (StatusCode::BAD_REQUEST, "rejected")
    } else {
        (StatusCode::OK, outcome)
    }
}

/// Whether a variable's value holds U+0000 anywhere, names included.
fn holds_nul(value: &async_graphql::Value) -> bool {
    match value {
        async_graphql::Value::String(s) => s.contains('\0'),
        async_graphql::Value::List(items) => items.iter().any(holds_nul),
        async_graphql::Value::Object(fields) => fields
            .iter()
            .any(|(name, value)| name.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

/// Parse, validation and limit errors come from async-graphql without a code.
fn add_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if has_code {
        return;
    }
    let message = error.message.clone();
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", "BAD_USER_INPUT");
    let mut field = async_graphql::indexmap::IndexMap::new();
    field.insert(
        async_graphql::Name::new("field"),
        async_graphql::Value::from("query"),
    );
    field.insert(
        async_graphql::Name::new("message"),
        async_graphql::Value::from(message),
    );
    extensions.set(
        "fields",
        async_graphql::Value::List(vec![async_graphql::Value::Object(field)]),
    );
}

/// The operations a batch names, for the audit of a client's call.
fn operation_names(batch: &BatchRequest) -> String {
    batch
        .iter()
        .map(|r| r.operation_name.as_deref().unwrap_or("anonymous"))
        .collect::<Vec<_>>()
        .join(",")
}

fn selected_operation(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_response_media_type() {
        let cases = [
            (None, Some(Media::Json)),
            (Some("application/json"), Some(Media::Json)),
            (
                Some("application/graphql-response+json"),
                Some(Media::GraphqlResponseJson),
            ),
            (
                Some("application/graphql-response+json, application/json;q=0.9"),
                Some(Media::GraphqlResponseJson),
            ),
            (Some("*/*"), Some(Media::Json)),
            (Some("text/plain"), None),
            (Some("application/json;q=0"), None),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
    }
}
