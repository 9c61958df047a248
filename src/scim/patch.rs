//! PATCH (RFC 7644 §3.5.2) applied to a resource's JSON.
//!
//! The resource as the client would GET it is patched in memory, then read
//! back exactly as a PUT body would be: one path from JSON to the services,
//! whatever the request. The forms Entra ID and Okta send are accepted:
//! capitalised operation names, operations without a path whose value names
//! attributes (dotted or behind an extension URN), `remove` of members by a
//! value list, and booleans sent as the strings `"True"` and `"False"` (read
//! by the resource modules).

use serde_json::{Map, Value};

use super::{
    ENTERPRISE_SCHEMA, PATCH_SCHEMA, ScimError, ScimResult,
    filter::{self, Filter, PatchPath, get_ci},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

/// Apply a PatchOp request body to `resource`.
pub fn apply(resource: &mut Value, body: &Value) -> ScimResult<()> {
    let schemas = get_ci(body, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_SCHEMA))) {
        return Err(ScimError::invalid_syntax(format!(
            "A PATCH body's schemas must hold {PATCH_SCHEMA}."
        )));
    }
    let operations = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| ScimError::invalid_syntax("Operations must list at least one operation."))?;
    for operation in operations {
        let op = match get_ci(operation, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Op::Add,
            Some("remove") => Op::Remove,
            Some("replace") => Op::Replace,
            _ => {
                return Err(ScimError::invalid_syntax(
                    "Each operation's op must be add, remove or replace.",
                ));
            }
        };
        let value = get_ci(operation, "value").cloned();
        match get_ci(operation, "path").and_then(Value::as_str) {
            Some(path) if !path.trim().is_empty() => {
                let path = filter::parse_path(path)
                    .map_err(|e| ScimError::invalid_path(format!("path: {e}")))?;
                apply_at(resource, op, &path, value)?;
            }
            _ => {
                if op == Op::Remove {
                    return Err(ScimError::no_target("A remove operation needs a path."));
                }
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::invalid_value(
                        "An operation without a path needs an object as its value.",
                    ));
                };
                for (key, value) in values {
                    if key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:") && value.is_object() {
                        // A whole extension: each of its attributes.
                        let Value::Object(attrs) = value else {
                            continue;
                        };
                        for (name, value) in attrs {
                            let path = filter::parse_path(&format!("{key}:{name}"))
                                .map_err(|e| ScimError::invalid_path(format!("{key}: {e}")))?;
                            apply_at(resource, op, &path, Some(value))?;
                        }
                        continue;
                    }
                    let path = filter::parse_path(&key)
                        .map_err(|e| ScimError::invalid_path(format!("{key}: {e}")))?;
                    apply_at(resource, op, &path, Some(value))?;
                }
            }
        }
    }
    Ok(())
}

/// The object that holds the attribute a path names: the resource itself,
/// or an extension's object inside it.
fn container<'a>(
    resource: &'a mut Value,
    path: &PatchPath,
) -> ScimResult<&'a mut Map<String, Value>> {
    let root = resource
        .as_object_mut()
        .ok_or_else(|| ScimError::invalid_syntax("The resource is not an object."))?;
    match path.attr.urn.as_deref() {
        Some(urn) if urn.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) => {
            let key = key_of(root, ENTERPRISE_SCHEMA);
            let ext = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !ext.is_object() {
                *ext = Value::Object(Map::new());
            }
            Ok(ext.as_object_mut().expect("made an object above"))
        }
        Some(urn)
            if urn
                .to_ascii_lowercase()
                .starts_with("urn:ietf:params:scim:schemas:core:2.0:") =>
        {
            Ok(root)
        }
        Some(urn) => Err(ScimError::invalid_path(format!(
            "The schema {urn} is not one of this resource's."
        ))),
        None => Ok(root),
    }
}

/// The key an object already uses for `name`, ignoring case, or `name`.
fn key_of(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn apply_at(
    resource: &mut Value,
    op: Op,
    path: &PatchPath,
    value: Option<Value>,
) -> ScimResult<()> {
    if op != Op::Remove && value.is_none() {
        return Err(ScimError::invalid_value(format!(
            "The {} of {} needs a value.",
            if op == Op::Add { "add" } else { "replace" },
            path.attr
        )));
    }
    // The whole enterprise extension: `urn:…:enterprise:2.0:User`.
    if let Some(urn) = &path.attr.urn
        && path.attr.sub.is_none()
        && path.filter.is_none()
        && format!("{urn}:{}", path.attr.name).eq_ignore_ascii_case(ENTERPRISE_SCHEMA)
    {
        let root = resource
            .as_object_mut()
            .ok_or_else(|| ScimError::invalid_syntax("The resource is not an object."))?;
        let key = key_of(root, ENTERPRISE_SCHEMA);
        match (op, value) {
            (Op::Remove, _) => {
                root.remove(&key);
            }
            (_, Some(Value::Object(more))) => {
                let ext = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
                match ext {
                    Value::Object(object) => merge(object, more),
                    other => *other = Value::Object(more),
                }
            }
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "{ENTERPRISE_SCHEMA} takes an object."
                )));
            }
        }
        return Ok(());
    }
    let holder = container(resource, path)?;
    let key = key_of(holder, &path.attr.name);

    // A sub-attribute of a single complex attribute: `name.givenName`.
    if let Some(sub) = &path.attr.sub {
        if path.filter.is_some() {
            return Err(ScimError::invalid_path(format!(
                "{}: a value filter follows the attribute, not its sub-attribute.",
                path.attr
            )));
        }
        let target = holder
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()));
        return match target {
            Value::Object(object) => {
                set_or_remove(object, sub, op, value);
                Ok(())
            }
            Value::Array(items) => {
                // `emails.value` on a multi-valued attribute: every value.
                for item in items.iter_mut() {
                    if let Some(object) = item.as_object_mut() {
                        set_or_remove(object, sub, op, value.clone());
                    }
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_path(format!(
                "{} has no sub-attributes.",
                path.attr.name
            ))),
        };
    }

    if let Some(filter) = &path.filter {
        return apply_filtered(holder, &key, filter, path.sub.as_deref(), op, value, path);
    }

    match op {
        Op::Remove => {
            match (holder.get_mut(&key), value) {
                // Entra ID: remove these members, named in the value.
                (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                    let ids: Vec<&Value> = gone.iter().filter_map(|g| get_ci(g, "value")).collect();
                    items.retain(|item| !get_ci(item, "value").is_some_and(|v| ids.contains(&v)));
                }
                _ => {
                    holder.remove(&key);
                }
            }
            Ok(())
        }
        Op::Add => {
            let value = value.unwrap_or(Value::Null);
            match (holder.get_mut(&key), value) {
                (Some(Value::Array(items)), Value::Array(more)) => {
                    for item in more {
                        append_unique(items, item);
                    }
                }
                (Some(Value::Array(items)), item @ Value::Object(_)) => append_unique(items, item),
                (Some(Value::Object(object)), Value::Object(more)) => merge(object, more),
                (_, value) => {
                    holder.insert(key, value);
                }
            }
            Ok(())
        }
        Op::Replace => {
            let value = value.unwrap_or(Value::Null);
            match (holder.get_mut(&key), value) {
                (Some(Value::Object(object)), Value::Object(more)) => merge(object, more),
                (_, value) => {
                    holder.insert(key, value);
                }
            }
            Ok(())
        }
    }
}

/// An operation on the values of a multi-valued attribute that match a
/// filter (`members[value eq "…"]`, `emails[type eq "work"].value`).
fn apply_filtered(
    holder: &mut Map<String, Value>,
    key: &str,
    filter: &Filter,
    sub: Option<&str>,
    op: Op,
    value: Option<Value>,
    path: &PatchPath,
) -> ScimResult<()> {
    let Some(Value::Array(items)) = holder.get_mut(key) else {
        return match op {
            // Nothing to remove is no error (RFC 7644 §3.5.2.2 lets it pass).
            Op::Remove => Ok(()),
            _ => Err(ScimError::no_target(format!(
                "No value of {} matches.",
                path.attr
            ))),
        };
    };
    match (op, sub) {
        (Op::Remove, None) => {
            items.retain(|item| !filter::matches(filter, item));
            Ok(())
        }
        (_, sub) => {
            let mut matched = false;
            for item in items
                .iter_mut()
                .filter(|item| filter::matches(filter, item))
            {
                matched = true;
                let Some(object) = item.as_object_mut() else {
                    continue;
                };
                match sub {
                    Some(sub) => set_or_remove(object, sub, op, value.clone()),
                    None => {
                        if let Some(Value::Object(more)) = value.clone() {
                            merge(object, more);
                        }
                    }
                }
            }
            if matched || op == Op::Remove {
                Ok(())
            } else {
                Err(ScimError::no_target(format!(
                    "No value of {} matches.",
                    path.attr
                )))
            }
        }
    }
}

fn set_or_remove(object: &mut Map<String, Value>, name: &str, op: Op, value: Option<Value>) {
    let key = key_of(object, name);
    match (op, value) {
        (Op::Remove, _) | (_, None) => {
            object.remove(&key);
        }
        (_, Some(value)) => {
            object.insert(key, value);
        }
    }
}

fn merge(object: &mut Map<String, Value>, more: Map<String, Value>) {
    for (name, value) in more {
        let key = key_of(object, &name);
        object.insert(key, value);
    }
}

/// Add a value to a multi-valued attribute unless one with the same
/// `value` is there.
fn append_unique(items: &mut Vec<Value>, item: Value) {
    let id = get_ci(&item, "value").cloned();
    if let Some(id) = id
        && items.iter().any(|i| get_ci(i, "value") == Some(&id))
    {
        return;
    }
    items.push(item);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(operations: Value) -> Value {
        json!({ "schemas": [PATCH_SCHEMA], "Operations": operations })
    }

    #[test]
    fn the_forms_entra_id_sends() {
        // From Microsoft's SCIM documentation: replace without a path, with
        // a capitalised op and a boolean as a string; a filtered email.
        let mut user = json!({
            "userName": "a@b.org",
            "active": true,
            "emails": [{ "value": "a@b.org", "type": "work", "primary": true }],
            "name": { "givenName": "A", "familyName": "B" },
        });
        apply(
            &mut user,
            &patch(json!([
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "c@b.org" },
                { "op": "Replace", "value": { "active": "False" } },
                { "op": "Add", "path": "name.givenName", "value": "Ann" },
                { "op": "Add", "path": ENTERPRISE_SCHEMA.to_owned() + ":department", "value": "ICU" },
            ])),
        )
        .unwrap();
        assert_eq!(user["emails"][0]["value"], "c@b.org");
        assert_eq!(user["active"], "False");
        assert_eq!(user["name"]["givenName"], "Ann");
        assert_eq!(user[ENTERPRISE_SCHEMA]["department"], "ICU");

        let mut group =
            json!({ "displayName": "Nurses", "members": [{ "value": "1" }, { "value": "2" }] });
        apply(
            &mut group,
            &patch(json!([
                { "op": "Add", "path": "members", "value": [{ "value": "3" }, { "value": "1" }] },
                { "op": "Remove", "path": "members", "value": [{ "value": "2" }] },
            ])),
        )
        .unwrap();
        assert_eq!(
            group["members"],
            json!([{ "value": "1" }, { "value": "3" }])
        );
    }

    #[test]
    fn the_forms_okta_sends() {
        // From Okta's SCIM 2.0 guide: replace of the whole object's fields
        // without a path, and removal of a member by a value filter.
        let mut user = json!({ "active": true, "name": { "givenName": "A", "familyName": "B" } });
        apply(
            &mut user,
            &patch(json!([{ "op": "replace", "value": { "active": false, "name": { "givenName": "Z" } } }])),
        )
        .unwrap();
        assert_eq!(user["active"], false);
        assert_eq!(user["name"], json!({ "givenName": "Z", "familyName": "B" }));

        let mut group =
            json!({ "displayName": "Nurses", "members": [{ "value": "1" }, { "value": "2" }] });
        apply(
            &mut group,
            &patch(json!([
                { "op": "remove", "path": "members[value eq \"2\"]" },
                { "op": "replace", "value": { "id": "g", "displayName": "RNs" } },
            ])),
        )
        .unwrap();
        assert_eq!(group["members"], json!([{ "value": "1" }]));
        assert_eq!(group["displayName"], "RNs");
    }

    #[test]
    fn bad_patches_are_refused_with_their_scim_type() {
        let mut user = json!({ "userName": "a" });
        let err = apply(&mut user, &json!({ "Operations": [] })).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidSyntax"));
        let err = apply(&mut user, &patch(json!([{ "op": "remove" }]))).unwrap_err();
        assert_eq!(err.scim_type, Some("noTarget"));
        let err = apply(&mut user, &patch(json!([{ "op": "move", "path": "a" }]))).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidSyntax"));
        let err = apply(
            &mut user,
            &patch(json!([{ "op": "add", "path": "a[", "value": 1 }])),
        )
        .unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        let err = apply(
            &mut user,
            &patch(json!([{ "op": "replace", "path": "emails[type eq \"work\"].value", "value": "x" }])),
        )
        .unwrap_err();
        assert_eq!(err.scim_type, Some("noTarget"));
    }
}
