//! SCIM 2.0 (RFC 7643, RFC 7644): identity providers and HR systems keep an
//! organisation's staff and role membership in step.
//!
//! SCIM is one more door onto the same rules: a `User` is a staff user and a
//! `Group` is a role. Every change goes through the services that GraphQL
//! uses (`services::users`, `services::roles`), under the API client's
//! permissions and the access rule, audited with the client as actor. This
//! module holds what is SCIM's own: filters and paths ([`filter`]), PATCH
//! ([`patch`]), the resources' JSON ([`users`], [`groups`]), the discovery
//! documents ([`discovery`]) and SCIM's error format ([`ScimError`]).
//! `http::scim` serves it at `/scim/v2`.

pub mod discovery;
pub mod filter;
pub mod groups;
pub mod patch;
mod sql;
pub mod users;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::AppError;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The most resources a list answers at once, and the default.
pub const MAX_COUNT: u64 = 200;
pub const DEFAULT_COUNT: u64 = 100;

/// An error in SCIM's own format (RFC 7644 §3.12).
#[derive(Debug)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(404, None, format!("No {what} has the id {id:?}."))
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        body
    }
}

impl From<AppError> for ScimError {
    fn from(err: AppError) -> Self {
        let status = err.http_status();
        let scim_type = match &err {
            AppError::BadInput(_) => Some("invalidValue"),
            AppError::Conflict(_) => Some("uniqueness"),
            _ => None,
        };
        let detail = match &err {
            AppError::BadInput(fields) => fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
            // The one conversion that logs an internal cause and hides it.
            _ => async_graphql::Error::from(err).message,
        };
        Self::new(status, scim_type, detail)
    }
}

impl From<sea_orm::DbErr> for ScimError {
    fn from(err: sea_orm::DbErr) -> Self {
        AppError::from(err).into()
    }
}

impl From<crate::auth::session::StoreError> for ScimError {
    fn from(err: crate::auth::session::StoreError) -> Self {
        AppError::from(err).into()
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

/// A resource's version: a digest of what it shows but its `meta`, so that
/// any change to it (a group's members, a user's groups) changes the ETag.
pub fn version_of(resource: &Value) -> String {
    let mut shown = resource.clone();
    if let Some(object) = shown.as_object_mut() {
        object.remove("meta");
    }
    let digest = Sha256::digest(shown.to_string().as_bytes());
    format!("W/\"{}\"", hex::encode(&digest[..12]))
}

/// A resource's `meta`, but its version (see [`stamp_version`]).
pub fn meta(
    resource_type: &str,
    created: chrono::DateTime<chrono::Utc>,
    modified: chrono::DateTime<chrono::Utc>,
    location: String,
) -> Value {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "resourceType": resource_type,
        "created": time(created),
        "lastModified": time(modified),
        "location": location,
    })
}

/// Set `meta.version` from the resource as shown.
pub fn stamp_version(resource: &mut Value) {
    let version = version_of(resource);
    resource["meta"]["version"] = json!(version);
}

/// A list response (RFC 7644 §3.4.2).
pub fn list_response(resources: Vec<Value>, total: u64, start_index: u64) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5) applied to a
/// resource: `id`, `schemas` and `meta.resourceType` are always returned.
pub fn project(resource: &mut Value, attributes: &[String], excluded: &[String]) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    let always = |key: &str| key == "id" || key == "schemas";
    if !attributes.is_empty() {
        let keys: Vec<String> = object.keys().cloned().collect();
        for key in keys {
            if always(&key) {
                continue;
            }
            let wanted: Vec<&String> = attributes
                .iter()
                .filter(|a| names(a, &key).is_some())
                .collect();
            if wanted.is_empty() {
                object.remove(&key);
                continue;
            }
            // Only some sub-attributes asked for: keep those.
            if wanted
                .iter()
                .all(|a| names(a, &key).is_some_and(|sub| sub.is_some()))
            {
                let subs: Vec<String> = wanted
                    .iter()
                    .filter_map(|a| names(a, &key).flatten())
                    .collect();
                keep_subs(object.get_mut(&key), &subs);
            }
        }
    }
    for path in excluded {
        let keys: Vec<String> = object.keys().cloned().collect();
        for key in keys {
            if always(&key) {
                continue;
            }
            match names(path, &key) {
                Some(None) => {
                    object.remove(&key);
                }
                Some(Some(sub)) => drop_sub(object.get_mut(&key), &sub),
                None => {}
            }
        }
    }
}

/// Whether `path` (`name`, `name.sub`, or either behind a schema URN) names
/// the top-level `key`: `Some(None)` the whole of it, `Some(Some(sub))` a
/// sub-attribute.
fn names(path: &str, key: &str) -> Option<Option<String>> {
    let path = path.trim();
    // A whole extension, or an attribute of one: `urn:…:User:department`.
    if key.starts_with("urn:") {
        if path.eq_ignore_ascii_case(key) {
            return Some(None);
        }
        let rest = path.get(key.len()..)?;
        if path[..key.len()].eq_ignore_ascii_case(key) {
            return rest.strip_prefix(':').map(|sub| Some(sub.to_owned()));
        }
        return None;
    }
    let path = path
        .strip_prefix(USER_SCHEMA)
        .or_else(|| path.strip_prefix(GROUP_SCHEMA))
        .map_or(path, |rest| rest.trim_start_matches(':'));
    let (name, sub) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub.to_owned())),
        None => (path, None),
    };
    name.eq_ignore_ascii_case(key).then_some(sub)
}

fn keep_subs(value: Option<&mut Value>, subs: &[String]) {
    let keep = |item: &mut Value| {
        if let Some(object) = item.as_object_mut() {
            object.retain(|k, _| subs.iter().any(|s| s.eq_ignore_ascii_case(k)));
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter_mut().for_each(keep),
        Some(item) => keep(item),
        None => {}
    }
}

fn drop_sub(value: Option<&mut Value>, sub: &str) {
    let drop = |item: &mut Value| {
        if let Some(object) = item.as_object_mut() {
            object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter_mut().for_each(drop),
        Some(item) => drop(item),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_and_excluded_attributes_shape_a_resource() {
        let user = json!({
            "schemas": [USER_SCHEMA],
            "id": "1",
            "userName": "a",
            "name": { "givenName": "A", "familyName": "B" },
            "emails": [{ "value": "a@b.org", "type": "work" }],
            ENTERPRISE_SCHEMA: { "department": "ICU", "employeeNumber": "7" },
        });
        let mut only = user.clone();
        project(
            &mut only,
            &["userName".into(), "name.familyName".into()],
            &[],
        );
        assert_eq!(
            only,
            json!({ "schemas": [USER_SCHEMA], "id": "1", "userName": "a", "name": { "familyName": "B" } })
        );
        let mut without = user.clone();
        project(
            &mut without,
            &[],
            &[
                "emails".into(),
                format!("{ENTERPRISE_SCHEMA}:department"),
                "name.givenName".into(),
            ],
        );
        assert!(without.get("emails").is_none());
        assert_eq!(without[ENTERPRISE_SCHEMA], json!({ "employeeNumber": "7" }));
        assert_eq!(without["name"], json!({ "familyName": "B" }));
    }

    #[test]
    fn the_version_follows_the_content() {
        let a = json!({ "id": "1", "displayName": "A", "meta": { "version": "x" } });
        let b = json!({ "id": "1", "displayName": "B" });
        assert_ne!(version_of(&a), version_of(&b));
        let mut a2 = a.clone();
        a2["meta"]["lastModified"] = json!("later");
        assert_eq!(version_of(&a), version_of(&a2));
    }
}
