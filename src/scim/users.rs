//! SCIM `User` resources: the organisation's staff users.
//!
//! `userName` is what the identity provider matches on (Entra ID sends the
//! user principal name, which need not be the email); the email comes from
//! the primary (or work, or first) of `emails`, else from `userName` when it
//! is an address. Rollcall keeps one address per user. `DELETE` deactivates
//! the user, ends their sessions and hides them from SCIM; the record stays
//! for its history, and creating the same address again brings it back.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query, SimpleExpr},
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    ENTERPRISE_SCHEMA, ScimError, ScimResult, USER_SCHEMA,
    filter::{AttrPath, Filter, Op, get_ci},
    sql, stamp_version,
};
use crate::db::Scope;
use crate::{
    auth::{Actor, Permission, password::Hasher, session::SessionStore},
    domain::Email,
    error::{AppError, Validation},
    services::{
        self,
        audit::{self, AuditEntry},
        roles,
        users::{self, Credentials, RawUser, UserChanges, UserDetails},
    },
};

use entity::user::Column;

/// Render a user as SCIM shows it.
pub fn render(user: &entity::user::Model, groups: &[entity::role::Model], base: &str) -> Value {
    let mut resource = json!({
        "schemas": [USER_SCHEMA],
        "id": user.id.to_string(),
        "userName": user.user_name.as_deref().unwrap_or(&user.email),
        "name": { "givenName": user.first_name, "familyName": user.last_name },
        "displayName": format!("{} {}", user.first_name, user.last_name),
        "active": user.status == "ACTIVE",
        "emails": [{ "value": user.email, "type": "work" }],
        "meta": super::meta("User", user.created_at, user.updated_at, format!("{base}/Users/{}", user.id)),
    });
    if let Some(external_id) = &user.external_id {
        resource["externalId"] = json!(external_id);
    }
    if let Some(title) = &user.title {
        resource["title"] = json!(title);
    }
    if !groups.is_empty() {
        resource["groups"] = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id.to_string(),
                    "display": g.name,
                    "$ref": format!("{base}/Groups/{}", g.id),
                })
            })
            .collect();
    }
    let mut enterprise = Map::new();
    if let Some(number) = &user.employee_number {
        enterprise.insert("employeeNumber".into(), json!(number));
    }
    if let Some(department) = &user.department {
        enterprise.insert("department".into(), json!(department));
    }
    if !enterprise.is_empty() {
        resource["schemas"] = json!([USER_SCHEMA, ENTERPRISE_SCHEMA]);
        resource[ENTERPRISE_SCHEMA] = Value::Object(enterprise);
    }
    stamp_version(&mut resource);
    resource
}

/// What a representation (a POST or PUT body, or a patched resource) asks
/// the user to be, checked by the same rules as GraphQL and the import.
pub struct Desired {
    pub details: UserDetails,
    pub active: bool,
}

/// A boolean, also as Entra ID's strings `"True"` and `"False"`.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn string(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// The address a representation gives: the primary email, else the work
/// one, else the first; else `userName` when it is an address.
fn email_of(body: &Value, user_name: Option<&str>) -> Option<String> {
    let emails = get_ci(body, "emails").and_then(Value::as_array);
    let pick = emails.and_then(|emails| {
        emails
            .iter()
            .find(|e| get_ci(e, "primary").and_then(boolean) == Some(true))
            .or_else(|| {
                emails.iter().find(|e| {
                    string(get_ci(e, "type")).is_some_and(|t| t.eq_ignore_ascii_case("work"))
                })
            })
            .or_else(|| emails.first())
    });
    pick.and_then(|e| string(get_ci(e, "value")))
        .or_else(|| user_name.filter(|u| Email::parse(u, "userName").is_ok()))
        .map(str::to_owned)
}

/// SCIM's names of the user's fields the product names otherwise.
fn scim_name(field: &'static str) -> &'static str {
    match field {
        "email" => "emails",
        "firstName" => "name.givenName",
        "lastName" => "name.familyName",
        other => other,
    }
}

pub fn desired(body: &Value) -> ScimResult<Desired> {
    let mut v = Validation::default();
    let user_name = string(get_ci(body, "userName"));
    let email = email_of(body, user_name);
    if email.is_none() {
        v.add(
            "emails",
            "a user needs an email address: give one in emails, or a userName that is one",
        );
    }
    let name = get_ci(body, "name");
    let enterprise = get_ci(body, ENTERPRISE_SCHEMA);
    let fields = RawUser {
        user_name: Some(user_name.unwrap_or("")),
        email: email.as_deref(),
        first_name: Some(string(name.and_then(|n| get_ci(n, "givenName"))).unwrap_or("")),
        last_name: Some(string(name.and_then(|n| get_ci(n, "familyName"))).unwrap_or("")),
        title: string(get_ci(body, "title")),
        external_id: string(get_ci(body, "externalId")),
        employee_number: string(enterprise.and_then(|e| get_ci(e, "employeeNumber"))),
        department: string(enterprise.and_then(|e| get_ci(e, "department"))),
        ..RawUser::default()
    }
    .parse(&mut v, scim_name);
    let active = match get_ci(body, "active") {
        None | Some(Value::Null) => true,
        Some(value) => boolean(value).unwrap_or_else(|| {
            v.add("active", "must be true or false");
            true
        }),
    };
    v.finish().map_err(ScimError::from)?;
    let user_name = fields.user_name.clone();
    let (Some(user_name), Some(mut details)) = (user_name, fields.details()) else {
        return Err(ScimError::invalid_value("The user is incomplete."));
    };
    // Kept only when it is not the address itself.
    details.user_name =
        (!user_name.eq_ignore_ascii_case(details.email.as_str())).then_some(user_name);
    Ok(Desired { details, active })
}

/// The users SCIM sees: the organisation's people, less those a client deleted.
fn visible(actor: &Actor) -> sea_orm::Select<entity::user::Entity> {
    actor
        .scope::<entity::user::Entity>()
        .filter(Column::DeprovisionedAt.is_null())
}

/// A user SCIM sees, or 404.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: &str,
) -> ScimResult<entity::user::Model> {
    actor.require(Permission::UsersRead)?;
    let Ok(uuid) = id.parse::<Uuid>() else {
        return Err(ScimError::not_found("User", id));
    };
    visible(actor)
        .filter(Column::Id.eq(uuid))
        .one(db)
        .await?
        .ok_or_else(|| ScimError::not_found("User", id))
}

/// The user, rendered with their groups.
pub async fn show(
    db: &impl ConnectionTrait,
    user: &entity::user::Model,
    base: &str,
) -> ScimResult<Value> {
    let groups = roles::roles_by_user(db, Scope::of(user.organization_id), &[user.id])
        .await?
        .remove(&user.id)
        .unwrap_or_default();
    Ok(render(user, &groups, base))
}

/// A page of users matching `filter`: the users and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
    base: &str,
) -> ScimResult<(Vec<Value>, u64)> {
    actor.require(Permission::UsersRead)?;
    let mut select = visible(actor);
    if let Some(filter) = filter {
        select = select.filter(condition(filter)?);
    }
    let (page, total) = sql::page(
        db,
        select,
        [Column::CreatedAt, Column::Id],
        start_index,
        count,
    )
    .await?;
    let ids: Vec<Uuid> = page.iter().map(|u| u.id).collect();
    let mut groups = roles::roles_by_user(db, actor.tenant(), &ids).await?;
    Ok((
        page.iter()
            .map(|u| render(u, &groups.remove(&u.id).unwrap_or_default(), base))
            .collect(),
        total,
    ))
}

/// Where a filter's attribute lives in the users table.
enum Target {
    /// Text compared without case.
    Text(SimpleExpr),
    /// Text compared as given (`id`, `externalId`).
    Exact(SimpleExpr),
    Active,
    Time(Column),
    /// A value every user has the same of (`emails.type` is `work`).
    Constant(Value),
}

fn target(path: &AttrPath, within: Option<&str>) -> ScimResult<Target> {
    let (name, sub) = match within {
        Some(parent) => (parent, Some(path.name.as_str())),
        None => (path.name.as_str(), path.sub.as_deref()),
    };
    let lower = |column: Column| Target::Text(Func::lower(Expr::col(column)).into());
    let is = |n: &str, s: Option<&str>| {
        name.eq_ignore_ascii_case(n)
            && match (sub, s) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    };
    Ok(if is("id", None) {
        Target::Exact(Expr::col(Column::Id).cast_as("text"))
    } else if is("userName", None) {
        Target::Text(user_name_expr())
    } else if is("emails", None) || is("emails", Some("value")) {
        lower(Column::Email)
    } else if is("emails", Some("type")) {
        Target::Constant(json!("work"))
    } else if is("emails", Some("primary")) {
        Target::Constant(json!(true))
    } else if is("externalId", None) {
        Target::Exact(Expr::col(Column::ExternalId))
    } else if is("active", None) {
        Target::Active
    } else if is("name", Some("givenName")) {
        lower(Column::FirstName)
    } else if is("name", Some("familyName")) {
        lower(Column::LastName)
    } else if is("title", None) {
        lower(Column::Title)
    } else if is("employeeNumber", None) {
        lower(Column::EmployeeNumber)
    } else if is("department", None) {
        lower(Column::Department)
    } else if is("meta", Some("lastModified")) {
        Target::Time(Column::UpdatedAt)
    } else if is("meta", Some("created")) {
        Target::Time(Column::CreatedAt)
    } else {
        return Err(ScimError::invalid_filter(format!(
            "Users cannot be filtered on {path}."
        )));
    })
}

/// A user's `userName`, lower case: the one a client gave, else the email.
fn user_name_expr() -> SimpleExpr {
    Func::lower(Func::coalesce([
        Expr::col(Column::UserName),
        Expr::col(Column::Email),
    ]))
    .into()
}

/// A filter as a condition on the users table.
pub fn condition(filter: &Filter) -> ScimResult<Condition> {
    sql::condition(filter, None, &leaf)
}

fn leaf(filter: &Filter, within: Option<&str>) -> ScimResult<Condition> {
    Ok(match filter {
        Filter::Present(path) => match target(path, within)? {
            Target::Text(expr) | Target::Exact(expr) => Condition::all()
                .add(expr.clone().is_not_null())
                .add(expr.ne("")),
            Target::Active | Target::Time(_) | Target::Constant(_) => sql::always(true),
        },
        Filter::Compare(path, op, value) => compare(target(path, within)?, *op, value, path)?,
        _ => return Err(ScimError::invalid_filter("Not a comparison.")),
    })
}

fn compare(target: Target, op: Op, value: &Value, path: &AttrPath) -> ScimResult<Condition> {
    let wrong =
        || ScimError::invalid_filter(format!("{path} cannot be compared with {value} that way."));
    Ok(match target {
        Target::Constant(constant) => sql::always(super::filter::compare(&constant, op, value)),
        Target::Active => {
            let Some(wanted) = boolean(value) else {
                return Err(wrong());
            };
            let active = Expr::col(Column::Status).eq("ACTIVE");
            match op {
                Op::Eq if wanted => Condition::all().add(active),
                Op::Eq => Condition::all().add(active).not(),
                Op::Ne if wanted => Condition::all().add(active).not(),
                Op::Ne => Condition::all().add(active),
                _ => return Err(wrong()),
            }
        }
        Target::Time(column) => {
            sql::compare_time(Expr::col(column), op, value).ok_or_else(wrong)?
        }
        Target::Text(expr) | Target::Exact(expr) if value.is_null() => match op {
            Op::Eq => Condition::all().add(expr.is_null()),
            Op::Ne => Condition::all().add(expr.is_not_null()),
            _ => return Err(wrong()),
        },
        target @ (Target::Text(_) | Target::Exact(_)) => {
            let (expr, text) = match (target, value.as_str()) {
                (Target::Text(expr), Some(s)) => (expr, s.to_lowercase()),
                (Target::Exact(expr), Some(s)) => (expr, s.to_owned()),
                _ => return Err(wrong()),
            };
            sql::compare_text(expr, op, text)
        }
    })
}

/// Refuse a `userName` another user of the organisation has, ignoring case.
async fn ensure_user_name_free(
    db: &impl ConnectionTrait,
    actor: &Actor,
    user_name: &str,
    except: Option<Uuid>,
) -> ScimResult<()> {
    let mut select = actor
        .scope::<entity::user::Entity>()
        .filter(user_name_expr().eq(user_name.to_lowercase()));
    if let Some(id) = except {
        select = select.filter(Column::Id.ne(id));
    }
    if select.count(db).await? > 0 {
        return Err(ScimError::uniqueness(format!(
            "A user with the userName {user_name:?} already exists."
        )));
    }
    Ok(())
}

fn user_name_of(details: &UserDetails) -> &str {
    details
        .user_name
        .as_deref()
        .unwrap_or(details.email.as_str())
}

/// What the services need to change users.
pub struct Doors<'a> {
    pub db: &'a DatabaseConnection,
    pub store: &'a dyn SessionStore,
    pub hasher: &'a Hasher,
    pub public_url: &'a str,
}

/// Create a user (`POST /Users`), or bring back one a client deleted.
pub async fn create(
    doors: &Doors<'_>,
    actor: &Actor,
    body: &Value,
) -> ScimResult<entity::user::Model> {
    actor.require(Permission::UsersWrite)?;
    let desired = desired(body)?;
    let txn = crate::db::begin_write(doors.db).await?;
    ensure_user_name_free(&txn, actor, user_name_of(&desired.details), None).await?;
    // A rehire: the address belongs to a user a client deleted here.
    let returning = actor
        .scope::<entity::user::Entity>()
        .filter(Column::Email.eq(desired.details.email.as_str()))
        .filter(Column::DeprovisionedAt.is_not_null())
        .one(&txn)
        .await?;
    let user = match returning {
        Some(user) => {
            let mut active: entity::user::ActiveModel = user.clone().into();
            active.deprovisioned_at = Set(None);
            active.update(&txn).await?;
            audit::record(
                &txn,
                AuditEntry::by(actor, "user.reprovision").target("User", user.id),
            )
            .await?;
            apply(doors, &txn, actor, user, desired).await?
        }
        None => {
            let active = desired.active;
            let created = users::create(
                &txn,
                doors.hasher,
                actor,
                desired.details,
                &[],
                Credentials::None,
                doors.public_url,
            )
            .await?;
            if active {
                created.user
            } else {
                users::deactivate(&txn, doors.store, actor, created.user.id).await?
            }
        }
    };
    services::commit_authz_change(txn, doors.store, actor.organization_id).await?;
    doors.store.bump_user_epoch(user.id).await?;
    Ok(user)
}

/// Make `user` what `desired` says, inside `txn`: details, then status.
async fn apply(
    doors: &Doors<'_>,
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    user: entity::user::Model,
    desired: Desired,
) -> ScimResult<entity::user::Model> {
    let d = desired.details;
    let changes = UserChanges {
        email: Some(d.email),
        first_name: Some(d.first_name),
        last_name: Some(d.last_name),
        title: Some(d.title),
        external_id: Some(d.external_id),
        employee_number: Some(d.employee_number),
        department: Some(d.department),
        user_name: Some(d.user_name),
        ..UserChanges::default()
    };
    let mut user = users::update(txn, doors.store, actor, user.id, changes).await?;
    let active = user.status == "ACTIVE";
    if desired.active && !active {
        user = users::reactivate(txn, actor, user.id).await?;
    } else if !desired.active && active {
        user = users::deactivate(txn, doors.store, actor, user.id).await?;
    }
    Ok(user)
}

/// Replace a user with a representation (`PUT`, and `PATCH` once applied).
pub async fn replace(
    doors: &Doors<'_>,
    actor: &Actor,
    user: entity::user::Model,
    body: &Value,
) -> ScimResult<entity::user::Model> {
    actor.require(Permission::UsersWrite)?;
    let desired = desired(body)?;
    let txn = crate::db::begin_write(doors.db).await?;
    ensure_user_name_free(&txn, actor, user_name_of(&desired.details), Some(user.id)).await?;
    let id = user.id;
    let user = apply(doors, &txn, actor, user, desired).await?;
    services::commit_authz_change(txn, doors.store, actor.organization_id).await?;
    doors.store.bump_user_epoch(id).await?;
    Ok(user)
}

/// `DELETE /Users/{id}`: deactivated (every session ends at once), hidden
/// from SCIM, kept for history.
pub async fn delete(doors: &Doors<'_>, actor: &Actor, user: entity::user::Model) -> ScimResult<()> {
    actor.require(Permission::UsersWrite)?;
    let txn = crate::db::begin_write(doors.db).await?;
    let id = user.id;
    let user = users::deactivate(&txn, doors.store, actor, id).await?;
    let mut active: entity::user::ActiveModel = user.into();
    active.deprovisioned_at = Set(Some(Utc::now()));
    active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "user.deprovision").target("User", id),
    )
    .await?;
    services::commit_authz_change(txn, doors.store, actor.organization_id).await?;
    doors.store.bump_user_epoch(id).await?;
    Ok(())
}

/// The ids among `ids` of users SCIM sees in the organisation.
pub async fn existing(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, AppError> {
    Ok(visible(actor)
        .select_only()
        .column(Column::Id)
        .filter(Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?)
}

/// The members of a role SCIM sees, in the order they joined the organisation.
pub async fn members_of(
    db: &impl ConnectionTrait,
    actor: &Actor,
    role_ids: &[Uuid],
) -> Result<Vec<(Uuid, entity::user::Model)>, AppError> {
    let links = actor
        .tenant()
        .find::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::RoleId.is_in(role_ids.iter().copied()))
        .all(db)
        .await?;
    let users = visible(actor)
        .filter(
            Column::Id.in_subquery(
                Query::select()
                    .column(entity::user_role::Column::UserId)
                    .from(entity::user_role::Entity)
                    .and_where(
                        Expr::col(entity::user_role::Column::RoleId)
                            .is_in(role_ids.iter().copied()),
                    )
                    .to_owned(),
            ),
        )
        .order_by_asc(Column::CreatedAt)
        .all(db)
        .await?;
    let mut members = Vec::new();
    for user in users {
        for link in links.iter().filter(|l| l.user_id == user.id) {
            members.push((link.role_id, user.clone()));
        }
    }
    Ok(members)
}
