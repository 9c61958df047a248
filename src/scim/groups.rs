//! SCIM `Group` resources: the organisation's roles, their members the
//! users who hold them.
//!
//! Membership changes go through `services::users::set_roles`, as
//! `setUserRoles` does: under ROLES_MANAGE and the access rule (the client
//! gives only roles whose permissions it holds, to users whose permissions it
//! holds), audited, and applied to the members' next request on every
//! instance. A group created by SCIM is a role with no permissions: an
//! administrator decides what it allows.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, QueryFilter,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    GROUP_SCHEMA, ScimError, ScimResult,
    filter::{AttrPath, Filter, Op, get_ci},
    sql, stamp_version,
    users::{self, Doors},
};
use crate::{
    auth::{Actor, Permission},
    domain::text,
    services::{
        self,
        audit::{self, AuditEntry},
        roles::{self, RoleSpec},
        users as staff,
    },
};

use entity::role::Column;

pub fn render(
    role: &entity::role::Model,
    members: Option<&[entity::user::Model]>,
    base: &str,
) -> Value {
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": role.id.to_string(),
        "displayName": role.name,
        "meta": super::meta("Group", role.created_at, role.updated_at, format!("{base}/Groups/{}", role.id)),
    });
    if let Some(external_id) = &role.external_id {
        resource["externalId"] = json!(external_id);
    }
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        resource["members"] = members
            .iter()
            .map(|u| {
                json!({
                    "value": u.id.to_string(),
                    "$ref": format!("{base}/Users/{}", u.id),
                })
            })
            .collect();
    }
    stamp_version(&mut resource);
    resource
}

pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: &str,
) -> ScimResult<entity::role::Model> {
    actor.require(Permission::UsersRead)?;
    let Ok(uuid) = id.parse::<Uuid>() else {
        return Err(ScimError::not_found("Group", id));
    };
    actor
        .scope::<entity::role::Entity>()
        .filter(Column::Id.eq(uuid))
        .one(db)
        .await?
        .ok_or_else(|| ScimError::not_found("Group", id))
}

/// The groups, rendered; members only when `with_members`.
async fn render_all(
    db: &impl ConnectionTrait,
    actor: &Actor,
    roles: &[entity::role::Model],
    with_members: bool,
    base: &str,
) -> ScimResult<Vec<Value>> {
    let mut by_role: BTreeMap<Uuid, Vec<entity::user::Model>> = BTreeMap::new();
    if with_members {
        let ids: Vec<Uuid> = roles.iter().map(|r| r.id).collect();
        for (role_id, user) in users::members_of(db, actor, &ids).await? {
            by_role.entry(role_id).or_default().push(user);
        }
    }
    Ok(roles
        .iter()
        .map(|role| {
            render(
                role,
                with_members.then(|| by_role.get(&role.id).map_or(&[][..], Vec::as_slice)),
                base,
            )
        })
        .collect())
}

pub async fn show(
    db: &impl ConnectionTrait,
    actor: &Actor,
    role: &entity::role::Model,
    with_members: bool,
    base: &str,
) -> ScimResult<Value> {
    Ok(
        render_all(db, actor, std::slice::from_ref(role), with_members, base)
            .await?
            .remove(0),
    )
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
    with_members: bool,
    base: &str,
) -> ScimResult<(Vec<Value>, u64)> {
    actor.require(Permission::UsersRead)?;
    let mut select = actor.scope::<entity::role::Entity>();
    if let Some(filter) = filter {
        select = select.filter(condition(filter, None)?);
    }
    let (page, total) = sql::page(
        db,
        select,
        [Column::CreatedAt, Column::Id],
        start_index,
        count,
    )
    .await?;
    Ok((
        render_all(db, actor, &page, with_members, base).await?,
        total,
    ))
}

fn condition(filter: &Filter, within: Option<&str>) -> ScimResult<Condition> {
    sql::condition(filter, within, &leaf)
}

fn leaf(filter: &Filter, within: Option<&str>) -> ScimResult<Condition> {
    Ok(match filter {
        Filter::Present(path) if is(path, within, "displayName", None) => sql::always(true),
        Filter::Present(path) if is(path, within, "members", None) => {
            Condition::all().add(Column::Id.in_subquery(holders(None)))
        }
        Filter::Present(path) if is(path, within, "externalId", None) => {
            Condition::all().add(Column::ExternalId.is_not_null())
        }
        Filter::Compare(path, op, value) => compare(path, within, *op, value)?,
        _ => {
            return Err(ScimError::invalid_filter(
                "Groups filter on id, displayName, externalId, members and meta.",
            ));
        }
    })
}

fn is(path: &AttrPath, within: Option<&str>, name: &str, sub: Option<&str>) -> bool {
    match within {
        Some(parent) => {
            parent.eq_ignore_ascii_case(name)
                && sub.is_some_and(|s| path.name.eq_ignore_ascii_case(s))
                && path.sub.is_none()
        }
        None => path.is(name, sub),
    }
}

/// The roles held by `user` (any user when `None`).
fn holders(user: Option<Uuid>) -> sea_orm::sea_query::SelectStatement {
    let mut query = Query::select()
        .column(entity::user_role::Column::RoleId)
        .from(entity::user_role::Entity)
        .to_owned();
    if let Some(user) = user {
        query.and_where(Expr::col(entity::user_role::Column::UserId).eq(user));
    }
    query
}

fn compare(path: &AttrPath, within: Option<&str>, op: Op, value: &Value) -> ScimResult<Condition> {
    let wrong =
        || ScimError::invalid_filter(format!("{path} cannot be compared with {value} that way."));
    let text = value.as_str().ok_or_else(wrong)?;
    if is(path, within, "id", None) {
        return match (op, text.parse::<Uuid>()) {
            (Op::Eq, Ok(id)) => Ok(Condition::all().add(Column::Id.eq(id))),
            (Op::Eq, Err(_)) => Ok(Condition::all().add(Expr::val(1).eq(0))),
            (Op::Ne, Ok(id)) => Ok(Condition::all().add(Column::Id.ne(id))),
            (Op::Ne, Err(_)) => Ok(Condition::all().add(Expr::val(1).eq(1))),
            _ => Err(wrong()),
        };
    }
    if is(path, within, "members", None) || is(path, within, "members", Some("value")) {
        let id = text.parse::<Uuid>().ok();
        return match op {
            Op::Eq => Ok(match id {
                Some(id) => Condition::all().add(Column::Id.in_subquery(holders(Some(id)))),
                None => Condition::all().add(Expr::val(1).eq(0)),
            }),
            Op::Ne => Ok(match id {
                Some(id) => Condition::all().add(Column::Id.not_in_subquery(holders(Some(id)))),
                None => Condition::all().add(Expr::val(1).eq(1)),
            }),
            _ => Err(wrong()),
        };
    }
    if is(path, within, "meta", Some("lastModified")) || is(path, within, "meta", Some("created")) {
        let column = if path
            .sub
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("created"))
        {
            Column::CreatedAt
        } else {
            Column::UpdatedAt
        };
        return sql::compare_time(Expr::col(column), op, value).ok_or_else(wrong);
    }
    if is(path, within, "externalId", None) {
        let column = Expr::col(Column::ExternalId);
        return Ok(match op {
            Op::Eq => Condition::all().add(column.eq(text)),
            Op::Ne => Condition::any()
                .add(column.clone().is_null())
                .add(column.ne(text)),
            _ => return Err(wrong()),
        });
    }
    if !is(path, within, "displayName", None) {
        return Err(ScimError::invalid_filter(format!(
            "Groups cannot be filtered on {path}."
        )));
    }
    Ok(sql::compare_text(
        Func::lower(Expr::col(Column::Name)).into(),
        op,
        text.to_lowercase(),
    ))
}

/// What a representation asks a group to be.
struct Desired {
    name: String,
    external_id: Option<String>,
    members: BTreeSet<Uuid>,
}

async fn desired(db: &impl ConnectionTrait, actor: &Actor, body: &Value) -> ScimResult<Desired> {
    let name = get_ci(body, "displayName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec =
        RoleSpec::parse(name, None, [], None).map_err(|e| ScimError::from(rename_field(e)))?;
    let external_id = text::optional(
        get_ci(body, "externalId").and_then(Value::as_str),
        "externalId",
        255,
    )?;
    let mut members = BTreeSet::new();
    if let Some(list) = get_ci(body, "members") {
        let Some(list) = list.as_array() else {
            return Err(ScimError::invalid_value("members must be a list."));
        };
        for member in list {
            let id = get_ci(member, "value")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<Uuid>().ok())
                .ok_or_else(|| {
                    ScimError::invalid_value("Each member needs the value of a user's id.")
                })?;
            members.insert(id);
        }
    }
    let ids: Vec<Uuid> = members.iter().copied().collect();
    let found: BTreeSet<Uuid> = users::existing(db, actor, &ids)
        .await?
        .into_iter()
        .collect();
    if let Some(missing) = members.difference(&found).next() {
        return Err(ScimError::invalid_value(format!(
            "members: no user has the id {missing}."
        )));
    }
    Ok(Desired {
        name: spec.name,
        external_id,
        members,
    })
}

/// A role's name is a group's `displayName`.
fn rename_field(err: crate::error::AppError) -> crate::error::AppError {
    match err {
        crate::error::AppError::BadInput(mut fields) => {
            for field in &mut fields {
                if field.field == "name" {
                    field.field = "displayName".into();
                }
            }
            crate::error::AppError::BadInput(fields)
        }
        other => other,
    }
}

/// Keep the identity provider's id of the group, audited.
async fn set_external_id(
    txn: &DatabaseTransaction,
    actor: &Actor,
    role: entity::role::Model,
    external_id: Option<String>,
) -> ScimResult<entity::role::Model> {
    if role.external_id == external_id {
        return Ok(role);
    }
    let id = role.id;
    let mut active: entity::role::ActiveModel = role.into();
    active.external_id = Set(external_id.clone());
    let role = active.update(txn).await?;
    audit::record(
        txn,
        AuditEntry::by(actor, "role.update")
            .target("Role", id)
            .changes(json!({ "externalId": external_id })),
    )
    .await?;
    Ok(role)
}

/// Give (`true`) or take (`false`) `role` to or from each of `users`.
async fn change_members(
    doors: &Doors<'_>,
    txn: &DatabaseTransaction,
    actor: &Actor,
    role: Uuid,
    users: impl IntoIterator<Item = Uuid>,
    give: bool,
) -> ScimResult<()> {
    let users: Vec<Uuid> = users.into_iter().collect();
    if users.is_empty() {
        return Ok(());
    }
    let mut held = roles::roles_by_user(txn, actor.tenant(), &users).await?;
    for user in users {
        let mut ids: BTreeSet<Uuid> = held
            .remove(&user)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let changed = if give {
            ids.insert(role)
        } else {
            ids.remove(&role)
        };
        if changed {
            let ids: Vec<Uuid> = ids.into_iter().collect();
            staff::set_roles(txn, doors.store, actor, user, &ids).await?;
        }
    }
    Ok(())
}

/// The members a role has now, as SCIM sees them.
async fn current_members(
    db: &impl ConnectionTrait,
    actor: &Actor,
    role: Uuid,
) -> ScimResult<BTreeSet<Uuid>> {
    Ok(users::members_of(db, actor, &[role])
        .await?
        .into_iter()
        .map(|(_, u)| u.id)
        .collect())
}

/// `POST /Groups`: a new role without permissions, with its members.
pub async fn create(
    doors: &Doors<'_>,
    actor: &Actor,
    body: &Value,
) -> ScimResult<entity::role::Model> {
    actor.require(Permission::RolesManage)?;
    let txn = crate::db::begin_write(doors.db).await?;
    let desired = desired(&txn, actor, body).await?;
    let role = roles::create(
        &txn,
        actor,
        RoleSpec {
            name: desired.name,
            description: None,
            permissions: BTreeSet::new(),
            required_certifications: None,
        },
    )
    .await
    .map_err(|e| ScimError::from(rename_field(e)))?;
    let role = set_external_id(&txn, actor, role, desired.external_id).await?;
    change_members(doors, &txn, actor, role.id, desired.members, true).await?;
    services::commit_authz_change(txn, doors.store, actor.organization_id).await?;
    Ok(role)
}

/// `PUT /Groups/{id}` (and `PATCH` once applied): its name and exactly
/// these members.
pub async fn replace(
    doors: &Doors<'_>,
    actor: &Actor,
    role: entity::role::Model,
    body: &Value,
) -> ScimResult<entity::role::Model> {
    actor.require(Permission::RolesManage)?;
    let txn = crate::db::begin_write(doors.db).await?;
    let desired = desired(&txn, actor, body).await?;
    let role = if desired.name == role.name {
        role
    } else {
        let permissions = roles::permissions_by_role(&txn, actor.tenant(), &[role.id])
            .await?
            .remove(&role.id)
            .unwrap_or_default();
        roles::update(
            &txn,
            doors.store,
            actor,
            role.id,
            RoleSpec {
                name: desired.name,
                description: role.description.clone(),
                permissions,
                required_certifications: None,
            },
        )
        .await
        .map_err(|e| ScimError::from(rename_field(e)))?
    };
    let role = set_external_id(&txn, actor, role, desired.external_id).await?;
    let now = current_members(&txn, actor, role.id).await?;
    change_members(
        doors,
        &txn,
        actor,
        role.id,
        now.difference(&desired.members).copied(),
        false,
    )
    .await?;
    change_members(
        doors,
        &txn,
        actor,
        role.id,
        desired.members.difference(&now).copied(),
        true,
    )
    .await?;
    services::commit_authz_change(txn, doors.store, actor.organization_id).await?;
    Ok(role)
}

/// `DELETE /Groups/{id}`: its members lose it, then the role goes. A
/// built-in role is refused.
pub async fn delete(doors: &Doors<'_>, actor: &Actor, role: entity::role::Model) -> ScimResult<()> {
    actor.require(Permission::RolesManage)?;
    if role.built_in {
        return Err(ScimError::mutability(format!(
            "{} is a built-in role: it cannot be deleted.",
            role.name
        )));
    }
    let txn = crate::db::begin_write(doors.db).await?;
    let now = current_members(&txn, actor, role.id).await?;
    change_members(doors, &txn, actor, role.id, now, false).await?;
    // Holders SCIM does not see (deleted by a client) lose it too.
    actor
        .tenant()
        .delete_many::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::RoleId.eq(role.id))
        .exec(&txn)
        .await?;
    roles::delete(&txn, actor, role.id).await?;
    services::commit_authz_change(txn, doors.store, actor.organization_id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;

    #[test]
    fn the_filters_identity_providers_send_translate() {
        for text in [
            r#"displayName eq "Nurses""#,
            r#"id eq "0190b0c0-0000-7000-8000-000000000000""#,
            r#"members[value eq "0190b0c0-0000-7000-8000-000000000000"]"#,
            r#"displayName sw "N" and not (members pr)"#,
        ] {
            assert!(
                condition(&parse_filter(text).unwrap(), None).is_ok(),
                "{text}"
            );
        }
        let err = condition(&parse_filter(r#"owner eq "x""#).unwrap(), None).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
    }
}
