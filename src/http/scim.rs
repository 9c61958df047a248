//! SCIM 2.0 over HTTP at `/scim/v2` (RFC 7644): authenticated by an API
//! client's bearer token, answered in `application/scim+json`, errors in
//! SCIM's own format. The protocol itself is in `crate::scim`.

use poem::{
    Body, Request, Response, handler,
    http::{HeaderValue, Method, StatusCode, header},
    web::{Data, Path},
};
use serde_json::Value;

use super::{Presented, origin_of, presented_token};
use crate::{
    auth::Actor,
    scim::{
        self, DEFAULT_COUNT, MAX_COUNT, ScimError, ScimResult, discovery,
        filter::{self, Filter},
        groups, patch,
        users::{self, Doors},
    },
    state::AppState,
};

const MEDIA_TYPE: &str = "application/scim+json; charset=utf-8";

/// Every SCIM request: `path` is what follows `/scim/v2/`.
#[handler]
pub async fn endpoint(
    req: &Request,
    Path(path): Path<String>,
    body: Body,
    state: Data<&AppState>,
) -> Response {
    match serve(req, &path, body, &state).await {
        Ok(response) => response,
        Err(err) => error_response(&err),
    }
}

fn error_response(err: &ScimError) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(MEDIA_TYPE)
        .body(err.body().to_string());
    if err.status == 401 {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scim\""),
        );
    }
    response
}

fn json(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type(MEDIA_TYPE)
        .body(value.to_string());
    if let Some(version) = value
        .pointer("/meta/version")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        response.headers_mut().insert(header::ETAG, version);
    }
    if status == StatusCode::CREATED
        && let Some(location) = value
            .pointer("/meta/location")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The API client behind the request; SCIM takes nothing else.
async fn client(req: &Request, state: &AppState) -> ScimResult<Actor> {
    let unauthenticated = || {
        ScimError::new(
            401,
            None,
            "SCIM needs an API client's token as Authorization: Bearer.",
        )
    };
    match presented_token(req) {
        Presented::Client(token) => state
            .auth
            .client_actor(
                &token,
                None,
                origin_of(req),
                &format!("SCIM {} {}", req.method(), req.uri().path()),
            )
            .await?
            .ok_or_else(unauthenticated),
        _ => Err(unauthenticated()),
    }
}

/// The query parameters of a list or a read.
#[derive(Default)]
struct Params {
    filter: Option<Filter>,
    start_index: u64,
    count: u64,
    attributes: Vec<String>,
    excluded: Vec<String>,
}

fn params(req: &Request) -> ScimResult<Params> {
    let mut params = Params {
        start_index: 1,
        count: DEFAULT_COUNT,
        ..Params::default()
    };
    let query = req.uri().query().unwrap_or_default();
    let list = |raw: &str| -> Vec<String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.to_ascii_lowercase().as_str() {
            "filter" => {
                params.filter = Some(
                    filter::parse_filter(&value)
                        .map_err(|e| ScimError::invalid_filter(format!("filter: {e}")))?,
                );
            }
            // Below 1 counts as 1 (RFC 7644 §3.4.2.4).
            "startindex" => {
                params.start_index = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::invalid_value("startIndex must be an integer."))?
                    .max(1)
                    .unsigned_abs();
            }
            "count" => {
                params.count = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::invalid_value("count must be an integer."))?
                    .clamp(0, MAX_COUNT as i64)
                    .unsigned_abs();
            }
            "attributes" => params.attributes = list(&value),
            "excludedattributes" => params.excluded = list(&value),
            _ => {}
        }
    }
    Ok(params)
}

/// The parameters of a `POST …/.search` (RFC 7644 §3.4.3).
fn search_params(body: &Value) -> ScimResult<Params> {
    let mut params = Params {
        start_index: 1,
        count: DEFAULT_COUNT,
        ..Params::default()
    };
    let field = |name: &str| filter::get_ci(body, name);
    if let Some(text) = field("filter").and_then(Value::as_str) {
        params.filter = Some(
            filter::parse_filter(text)
                .map_err(|e| ScimError::invalid_filter(format!("filter: {e}")))?,
        );
    }
    if let Some(start) = field("startIndex") {
        params.start_index = start
            .as_i64()
            .ok_or_else(|| ScimError::invalid_value("startIndex must be an integer."))?
            .max(1)
            .unsigned_abs();
    }
    if let Some(count) = field("count") {
        params.count = count
            .as_i64()
            .ok_or_else(|| ScimError::invalid_value("count must be an integer."))?
            .clamp(0, MAX_COUNT as i64)
            .unsigned_abs();
    }
    let names = |value: Option<&Value>| -> Vec<String> {
        match value {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(list)) => list.split(',').map(|s| s.trim().to_owned()).collect(),
            _ => Vec::new(),
        }
    };
    params.attributes = names(field("attributes"));
    params.excluded = names(field("excludedAttributes"));
    Ok(params)
}

/// A list's parameters: from the query, or a `.search` body.
async fn list_params(req: &Request, body: Body, state: &AppState) -> ScimResult<Params> {
    if req.method() == Method::POST {
        search_params(&read_json(body, state).await?)
    } else {
        params(req)
    }
}

async fn read_json(body: Body, state: &AppState) -> ScimResult<Value> {
    let limit = state.config.max_body_bytes;
    let bytes = body
        .into_bytes_limit(limit)
        .await
        .map_err(|_| ScimError::new(413, None, format!("The body exceeds {limit} bytes.")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("The body is not JSON: {e}")))
}

/// `If-Match` (RFC 7644 §3.14): a change to a resource that moved on since
/// the client read it is refused with 412.
fn check_if_match(req: &Request, current: &Value) -> ScimResult<()> {
    let Some(wanted) = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let version = current.pointer("/meta/version").and_then(Value::as_str);
    let strip = |v: &str| v.trim().trim_start_matches("W/").to_owned();
    let matches = wanted
        .split(',')
        .any(|w| w.trim() == "*" || version.is_some_and(|v| strip(w) == strip(v)));
    if matches {
        Ok(())
    } else {
        Err(ScimError::new(
            412,
            None,
            "The resource changed since that version was read.",
        ))
    }
}

fn not_modified(req: &Request, current: &Value) -> bool {
    let version = current.pointer("/meta/version").and_then(Value::as_str);
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .zip(version)
        .is_some_and(|(wanted, version)| wanted.split(',').any(|w| w.trim() == version))
}

/// What a `PUT` or `PATCH` asks a resource to be: the body, or the
/// resource as it is with the body's operations applied. A stale `If-Match`
/// is refused first.
async fn wanted(req: &Request, current: Value, body: Body, state: &AppState) -> ScimResult<Value> {
    check_if_match(req, &current)?;
    let body = read_json(body, state).await?;
    if req.method() == Method::PATCH {
        let mut patched = current;
        patch::apply(&mut patched, &body)?;
        Ok(patched)
    } else {
        Ok(body)
    }
}

fn shaped(mut resource: Value, params: &Params) -> Value {
    scim::project(&mut resource, &params.attributes, &params.excluded);
    resource
}

/// Whether a group's members are wanted: a list of thousands is left out
/// when the client asks (Entra ID reads groups with `excludedAttributes=members`).
fn wants_members(params: &Params) -> bool {
    let named = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case("members"));
    !named(&params.excluded) && (params.attributes.is_empty() || named(&params.attributes))
}

async fn serve(req: &Request, path: &str, body: Body, state: &AppState) -> ScimResult<Response> {
    let base = format!("{}/scim/v2", state.public_url);
    let actor = client(req, state).await?;
    let doors = Doors {
        db: &state.db,
        store: state.auth.store().as_ref(),
        hasher: state.auth.hasher(),
        public_url: &state.public_url,
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let unsupported = || ScimError::new(405, None, format!("{method} is not served here."));
    match (segments.as_slice(), &method) {
        (["ServiceProviderConfig"], &Method::GET) => Ok(json(
            StatusCode::OK,
            &discovery::service_provider_config(&base),
        )),
        (["ResourceTypes"], &Method::GET) => {
            let all = discovery::resource_types(&base);
            let total = all.len() as u64;
            Ok(json(StatusCode::OK, &scim::list_response(all, total, 1)))
        }
        (["ResourceTypes", id], &Method::GET) => discovery::resource_types(&base)
            .into_iter()
            .find(|r| r["id"] == *id)
            .map(|r| json(StatusCode::OK, &r))
            .ok_or_else(|| ScimError::not_found("resource type", id)),
        (["Schemas"], &Method::GET) => {
            let all = discovery::schemas(&base);
            let total = all.len() as u64;
            Ok(json(StatusCode::OK, &scim::list_response(all, total, 1)))
        }
        (["Schemas", id], &Method::GET) => discovery::schemas(&base)
            .into_iter()
            .find(|s| s["id"] == *id)
            .map(|s| json(StatusCode::OK, &s))
            .ok_or_else(|| ScimError::not_found("schema", id)),

        (["Users"], &Method::GET) | (["Users", ".search"], &Method::POST) => {
            let params = list_params(req, body, state).await?;
            let (found, total) = users::list(
                &state.db,
                &actor,
                params.filter.as_ref(),
                params.start_index,
                params.count,
                &base,
            )
            .await?;
            let found = found.into_iter().map(|r| shaped(r, &params)).collect();
            Ok(json(
                StatusCode::OK,
                &scim::list_response(found, total, params.start_index),
            ))
        }
        (["Users"], &Method::POST) => {
            let body = read_json(body, state).await?;
            let user = users::create(&doors, &actor, &body).await?;
            let shown = users::show(&state.db, &user, &base).await?;
            Ok(json(StatusCode::CREATED, &shaped(shown, &params(req)?)))
        }
        (["Users", id], method) => {
            let user = users::find(&state.db, &actor, id).await?;
            let current = users::show(&state.db, &user, &base).await?;
            match *method {
                Method::GET => {
                    if not_modified(req, &current) {
                        return Ok(Response::builder()
                            .status(StatusCode::NOT_MODIFIED)
                            .finish());
                    }
                    Ok(json(StatusCode::OK, &shaped(current, &params(req)?)))
                }
                Method::PUT | Method::PATCH => {
                    let wanted = wanted(req, current, body, state).await?;
                    let user = users::replace(&doors, &actor, user, &wanted).await?;
                    let shown = users::show(&state.db, &user, &base).await?;
                    Ok(json(StatusCode::OK, &shaped(shown, &params(req)?)))
                }
                Method::DELETE => {
                    check_if_match(req, &current)?;
                    users::delete(&doors, &actor, user).await?;
                    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
                }
                _ => Err(unsupported()),
            }
        }

        (["Groups"], &Method::GET) | (["Groups", ".search"], &Method::POST) => {
            let params = list_params(req, body, state).await?;
            let (found, total) = groups::list(
                &state.db,
                &actor,
                params.filter.as_ref(),
                params.start_index,
                params.count,
                wants_members(&params),
                &base,
            )
            .await?;
            let found = found.into_iter().map(|r| shaped(r, &params)).collect();
            Ok(json(
                StatusCode::OK,
                &scim::list_response(found, total, params.start_index),
            ))
        }
        (["Groups"], &Method::POST) => {
            let body = read_json(body, state).await?;
            let role = groups::create(&doors, &actor, &body).await?;
            let params = params(req)?;
            let shown = groups::show(&state.db, &actor, &role, true, &base).await?;
            Ok(json(StatusCode::CREATED, &shaped(shown, &params)))
        }
        (["Groups", id], method) => {
            let role = groups::find(&state.db, &actor, id).await?;
            let params = params(req)?;
            match *method {
                Method::GET => {
                    let current =
                        groups::show(&state.db, &actor, &role, wants_members(&params), &base)
                            .await?;
                    if not_modified(req, &current) {
                        return Ok(Response::builder()
                            .status(StatusCode::NOT_MODIFIED)
                            .finish());
                    }
                    Ok(json(StatusCode::OK, &shaped(current, &params)))
                }
                Method::PUT | Method::PATCH => {
                    let current = groups::show(&state.db, &actor, &role, true, &base).await?;
                    let wanted = wanted(req, current, body, state).await?;
                    let role = groups::replace(&doors, &actor, role, &wanted).await?;
                    let shown = groups::show(&state.db, &actor, &role, true, &base).await?;
                    Ok(json(StatusCode::OK, &shaped(shown, &params)))
                }
                Method::DELETE => {
                    let current = groups::show(&state.db, &actor, &role, true, &base).await?;
                    check_if_match(req, &current)?;
                    groups::delete(&doors, &actor, role).await?;
                    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
                }
                _ => Err(unsupported()),
            }
        }
        (["Bulk"], _) => Err(ScimError::new(
            501,
            None,
            "Bulk operations are not supported.",
        )),
        ([".search"], &Method::POST) => Err(ScimError::new(
            501,
            None,
            "Search one resource type at a time: POST /Users/.search or /Groups/.search.",
        )),
        (
            [
                "Users" | "Groups" | "ServiceProviderConfig" | "ResourceTypes" | "Schemas",
                ..,
            ],
            _,
        ) => Err(unsupported()),
        _ => Err(ScimError::new(
            404,
            None,
            format!("Nothing is served at /scim/v2/{path}."),
        )),
    }
}
