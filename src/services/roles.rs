//! Roles and their permissions, and the guard rail that keeps every organisation
//! administrable.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, LazyLock, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, Iterable, JoinType, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait as _, TransactionSession, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::{
    auth::{Actor, Authority, Permission, session::SessionStore},
    db::{Scope, unscoped},
    domain::text,
    error::{AppError, AppResult, OnConstraint, Validation},
};

/// The organisation's roles by name. Everyone may see them: a user's own roles are
/// part of their profile.
pub async fn list(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<Vec<entity::role::Model>> {
    Ok(actor
        .scope::<entity::role::Entity>()
        .order_by_asc(entity::role::Column::Name)
        .all(db)
        .await?)
}

/// The roles of each organisation as this instance last read them, for the
/// pages of users that show their holders' roles: a page reads the ids of
/// each user's roles, and their names come from here rather than from a
/// statement of their own.
///
/// What is kept of an organisation stands while its authorisation epoch
/// does (every change to its roles replaces the epoch, see
/// [`super::commit_authz_change`]), and is read again when a page holds a role
/// it does not know (one created since) or after [`KEPT_FOR`] whatever the
/// epoch says. A request without the epoch of the organisation it acts in (a
/// client's, a feed's, a super admin's in another organisation) reads the
/// roles afresh and keeps nothing.
#[derive(Default)]
pub struct Catalog {
    organizations: Mutex<HashMap<Uuid, Arc<KnownRoles>>>,
}

/// One organisation's roles by id, as read under an epoch.
pub struct KnownRoles {
    epoch: Arc<str>,
    read: Instant,
    roles: HashMap<Uuid, Arc<entity::role::Model>>,
}

impl KnownRoles {
    /// The role with this id, if the organisation has it.
    pub fn get(&self, id: &Uuid) -> Option<&Arc<entity::role::Model>> {
        self.roles.get(id)
    }
}

/// How long the catalog keeps an organisation's roles, whatever its epoch.
const KEPT_FOR: Duration = Duration::from_secs(300);
/// Organisations the catalog keeps at most; it starts again when full.
const CATALOG_CAPACITY: usize = 10_000;

impl Catalog {
    /// The roles of `actor`'s organisation, current as of the request's
    /// epoch and holding every one of `ids` the organisation has.
    pub async fn roles(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> AppResult<Arc<KnownRoles>> {
        let organization = actor.organization_id;
        let epoch = actor.authz_epoch();
        if let Some(epoch) = epoch {
            let kept = self.lock().get(&organization).cloned();
            if let Some(kept) =
                kept.filter(|kept| *kept.epoch == *epoch && kept.read.elapsed() < KEPT_FOR)
                && ids.into_iter().all(|id| kept.roles.contains_key(&id))
            {
                return Ok(kept);
            }
        }
        let roles = actor.scope::<entity::role::Entity>().all(db).await?;
        let known = Arc::new(KnownRoles {
            epoch: epoch.unwrap_or_default().into(),
            read: Instant::now(),
            roles: roles.into_iter().map(|r| (r.id, Arc::new(r))).collect(),
        });
        if epoch.is_some() {
            let mut organizations = self.lock();
            if organizations.len() >= CATALOG_CAPACITY {
                organizations.clear();
            }
            organizations.insert(organization, known.clone());
        }
        Ok(known)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<KnownRoles>>> {
        self.organizations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The permissions of each of `role_ids`.
pub async fn permissions_by_role(
    db: &impl ConnectionTrait,
    scope: Scope,
    role_ids: &[Uuid],
) -> AppResult<BTreeMap<Uuid, BTreeSet<Permission>>> {
    let rows: Vec<(Uuid, String)> = scope
        .find::<entity::role::Entity>()
        .select_only()
        .column(entity::role_permission::Column::RoleId)
        .column(entity::role_permission::Column::Permission)
        .join(
            JoinType::InnerJoin,
            entity::role::Relation::Permissions.def(),
        )
        .filter(entity::role_permission::Column::RoleId.is_in(role_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let mut map: BTreeMap<Uuid, BTreeSet<Permission>> = BTreeMap::new();
    for (role_id, name) in rows {
        if let Some(p) = Permission::parse(&name) {
            map.entry(role_id).or_default().insert(p);
        }
    }
    Ok(map)
}

/// The permissions of every role of an organisation.
pub async fn permissions_of_organization_roles(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> AppResult<BTreeMap<Uuid, BTreeSet<Permission>>> {
    let scope = Scope::of(organization_id);
    let ids: Vec<Uuid> = scope
        .find::<entity::role::Entity>()
        .select_only()
        .column(entity::role::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    permissions_by_role(db, scope, &ids).await
}

/// The roles of each of `user_ids`.
pub async fn roles_by_user(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<BTreeMap<Uuid, Vec<entity::role::Model>>> {
    // Driven by the users' ids, as a scoped page found them. With the
    // organisation in the statement, in any form, PostgreSQL starts from the
    // roles and reads every holder of each: 2.8 ms more of its CPU per page of
    // 100 under `cargo bench --bench reads`. The organisation is held to on
    // each row read instead.
    let rows: Vec<(Uuid, entity::role::Model)> = if db.get_database_backend() == DbBackend::Postgres
    {
        let held: Vec<(entity::role::Model, Vec<Uuid>)> =
            crate::db::rows::read(db, roles_of_ids_on_postgres(user_ids)).await?;
        held.into_iter()
            .flat_map(|(role, holders)| holders.into_iter().map(move |user| (user, role.clone())))
            .collect()
    } else {
        unscoped::find::<entity::user_role::Entity>()
            .filter(entity::user_role::Column::UserId.is_in(user_ids.iter().copied()))
            .find_also_related(entity::role::Entity)
            .all(db)
            .await?
            .into_iter()
            .filter_map(|(link, role)| Some((link.user_id, role?)))
            .collect()
    };
    let mut map: BTreeMap<Uuid, Vec<entity::role::Model>> = BTreeMap::new();
    for (user_id, role) in rows {
        if role.organization_id == scope.organization_id() {
            map.entry(user_id).or_default().push(role);
        }
    }
    for roles in map.values_mut() {
        roles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(map)
}

/// Each role that any of `user_ids` holds, once, with the ids of those of
/// them who hold it, to be read by position: a page of 100 users holds a
/// hundred and more links to a handful of roles, and each role's columns
/// were sent, read and built as often as it was held.
///
/// The ids come as one array, so that the statement has one shape whatever
/// their number and PostgreSQL plans it once per connection and keeps the
/// plan: with a parameter per id, as `IN ($1, …, $100)`, or as `= ANY($1)`,
/// it planned every page afresh, 0.3 – 0.4 ms of its CPU, more than running
/// it. Each id's links are read from the links' primary key (the `OFFSET 0`
/// keeps PostgreSQL from turning that into a join over every organisation's
/// links), and grouped by role before the roles' own columns are read.
fn roles_of_ids_on_postgres(user_ids: &[Uuid]) -> sea_orm::Statement {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        use entity::{role, user_role};
        use sea_orm::{EntityName as _, IdenStatic as _};
        let columns: Vec<String> = role::Column::iter()
            .map(|c| format!("r.\"{}\"", c.as_str()))
            .collect();
        format!(
            "SELECT {columns}, held.holders FROM ( \
               SELECT link.role_id, array_agg(page.id) AS holders \
               FROM unnest($1::uuid[]) AS page(id) \
               CROSS JOIN LATERAL ( \
                 SELECT \"{role_id}\" AS role_id FROM \"{links}\" \
                 WHERE \"{user_id}\" = page.id OFFSET 0 \
               ) AS link \
               GROUP BY link.role_id \
             ) AS held JOIN \"{roles}\" AS r ON r.\"{id}\" = held.role_id",
            columns = columns.join(", "),
            links = user_role::Entity.table_name(),
            roles = role::Entity.table_name(),
            role_id = user_role::Column::RoleId.as_str(),
            user_id = user_role::Column::UserId.as_str(),
            id = role::Column::Id.as_str(),
        )
    });
    sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        SQL.as_str(),
        [sea_orm::Value::Array(
            sea_orm::sea_query::ArrayType::Uuid,
            Some(Box::new(user_ids.iter().map(|&id| id.into()).collect())),
        )],
    )
}

/// The permissions each of `user_ids` holds through their roles (users without
/// any are absent).
pub async fn permissions_by_user(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<BTreeMap<Uuid, BTreeSet<Permission>>> {
    if user_ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    // Driven by the users' ids, held to the organisation on each row, as
    // [`roles_by_user`]: an import batch asks for a thousand at once.
    let rows: Vec<(Uuid, Uuid, String)> = unscoped::find::<entity::role_permission::Entity>()
        .select_only()
        .column(entity::user_role::Column::UserId)
        .column(entity::role::Column::OrganizationId)
        .column(entity::role_permission::Column::Permission)
        .join(
            JoinType::InnerJoin,
            entity::role_permission::Relation::Role.def(),
        )
        .join(JoinType::InnerJoin, entity::role::Relation::UserRoles.def())
        .filter(crate::db::among(
            db.get_database_backend(),
            entity::user_role::Column::UserId,
            user_ids.iter().copied(),
        ))
        .into_tuple()
        .all(db)
        .await?;
    let mut map: BTreeMap<Uuid, BTreeSet<Permission>> = BTreeMap::new();
    for (user_id, organization_id, name) in rows {
        if organization_id != scope.organization_id() {
            continue;
        }
        if let Some(p) = Permission::parse(&name) {
            map.entry(user_id).or_default().insert(p);
        }
    }
    Ok(map)
}

/// What `user_id` may hand out now: nothing once deactivated or gone. Import
/// jobs take their starter's authority afresh for every batch, so a demotion
/// applies to the rest of a running import.
pub async fn authority_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_id: Option<Uuid>,
) -> AppResult<Authority> {
    let Some(user_id) = user_id else {
        return Ok(Authority::none());
    };
    let Some(user) = scope
        .actors()
        .filter(entity::user::Column::Id.eq(user_id))
        .one(db)
        .await?
    else {
        return Ok(Authority::none());
    };
    if user.status != "ACTIVE" {
        return Ok(Authority::none());
    }
    // What they hold now: a role suspended for a lapsed certification gives
    // nothing.
    let permissions = permissions_of(db, Scope::of(user.organization_id), user_id).await?;
    Ok(Authority::new(user.is_super_admin, Arc::new(permissions)))
}

/// The permissions a user holds through their roles, but those suspended for
/// a missing or expired certification.
pub async fn permissions_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_id: Uuid,
) -> AppResult<BTreeSet<Permission>> {
    Ok(standing_permissions(db, scope, user_id).await?.0)
}

/// [`permissions_of`], and the next moment they change by time alone (a
/// required certification lapsing).
pub(crate) async fn standing_permissions(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_id: Uuid,
) -> AppResult<(BTreeSet<Permission>, Option<chrono::DateTime<Utc>>)> {
    let standing = super::credentials::standing(db, scope, user_id).await?;
    let mut select = scope
        .find::<entity::role::Entity>()
        .select_only()
        .column(entity::role_permission::Column::Permission)
        .join(
            JoinType::InnerJoin,
            entity::role::Relation::Permissions.def(),
        )
        .join(JoinType::InnerJoin, entity::role::Relation::UserRoles.def())
        .filter(entity::user_role::Column::UserId.eq(user_id));
    if !standing.suspended.is_empty() {
        select = select.filter(
            entity::role_permission::Column::RoleId.is_not_in(standing.suspended.iter().copied()),
        );
    }
    let names: Vec<String> = select.distinct().into_tuple().all(db).await?;
    Ok((
        names.iter().filter_map(|n| Permission::parse(n)).collect(),
        standing.next_change,
    ))
}

/// The access rule for giving `roles`: each must hold only permissions that
/// `authority` holds. `FORBIDDEN` naming the first role that holds more.
pub async fn ensure_may_give(
    db: &impl ConnectionTrait,
    authority: &Authority,
    roles: &[entity::role::Model],
    field: &'static str,
) -> AppResult<()> {
    if roles.is_empty() || authority.is_super_admin() {
        return Ok(());
    }
    // Roles are looked up in the giver's organisation; one from elsewhere
    // would read as holding nothing.
    let scope = Scope::of(roles[0].organization_id);
    if roles
        .iter()
        .any(|r| r.organization_id != scope.organization_id())
    {
        return Err(AppError::Internal(anyhow::anyhow!(
            "roles of more than one organisation given at once"
        )));
    }
    let ids: Vec<Uuid> = roles.iter().map(|r| r.id).collect();
    let by_role = permissions_by_role(db, scope, &ids).await?;
    for role in roles {
        let held = by_role.get(&role.id).cloned().unwrap_or_default();
        authority.ensure_may_grant(&role.name, &held, field)?;
    }
    Ok(())
}

/// The organisation's Provider role, which a new provider gets when no roles are
/// named: `None` when it is gone, or holds a permission `authority` does not
/// (the provider then starts without roles, for someone who may to give them).
pub async fn default_provider_role(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    authority: &Authority,
) -> AppResult<Option<entity::role::Model>> {
    let Some(role) = Scope::of(organization_id)
        .find::<entity::role::Entity>()
        .filter(entity::role::Column::Name.eq("Provider"))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let held = permissions_by_role(db, Scope::of(organization_id), &[role.id])
        .await?
        .remove(&role.id)
        .unwrap_or_default();
    Ok(authority
        .ensure_may_grant(&role.name, &held, "roleIds")
        .is_ok()
        .then_some(role))
}

/// What a role is made of.
#[derive(Clone, Debug)]
pub struct RoleSpec {
    pub name: String,
    pub description: Option<String>,
    pub permissions: BTreeSet<Permission>,
    /// The certifications a holder must have for the role to apply; `None`
    /// leaves them as they are (none for a new role).
    pub required_certifications: Option<Vec<String>>,
}

impl RoleSpec {
    pub fn parse(
        name: &str,
        description: Option<&str>,
        permissions: impl IntoIterator<Item = Permission>,
        required_certifications: Option<&[String]>,
    ) -> AppResult<Self> {
        let mut v = Validation::default();
        let name = v.check(text::required(name, "name", 100));
        let description = v.check(text::optional(description, "description", 500));
        let required_certifications = required_certifications
            .and_then(|names| super::credentials::parse_required(names, &mut v));
        v.finish()?;
        Ok(Self {
            name: name.unwrap_or_default(),
            description: description.flatten(),
            permissions: permissions.into_iter().collect(),
            required_certifications,
        })
    }
}

/// Create a role in the actor's organisation (ROLES_MANAGE).
pub async fn create(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    spec: RoleSpec,
) -> AppResult<entity::role::Model> {
    actor.require(Permission::RolesManage)?;
    actor.require_recent_mfa()?;
    actor
        .authority()
        .ensure_may_grant(&spec.name, &spec.permissions, "permissions")?;
    let txn = crate::db::begin_write(db).await?;
    ensure_name_free(&txn, actor, &spec.name, None).await?;
    let now = Utc::now();
    let role = entity::role::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        built_in: false,
        external_id: None,
        created_at: now,
        updated_at: now,
        required_certifications: spec
            .required_certifications
            .as_ref()
            .filter(|names| !names.is_empty())
            .map(|names| json!(names)),
    };
    entity::role::Entity::insert(entity::role::ActiveModel::from(role.clone()))
        .exec_without_returning(&txn)
        .await
        .on_unique_violation(|| name_taken(&spec.name))?;
    write_permissions(&txn, role.id, &spec.permissions).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "role.create")
            .target("Role", role.id)
            .changes(json!({
                "name": role.name,
                "permissions": names(&spec.permissions),
                "requiredCertifications": role.required_certifications(),
            })),
    )
    .await?;
    txn.commit().await?;
    Ok(role)
}

/// Rename, describe and re-permission a role (ROLES_MANAGE). The change applies to
/// every holder's next request; it may not leave the organisation without an
/// active user who can manage users and roles.
pub async fn update(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    id: Uuid,
    spec: RoleSpec,
) -> AppResult<entity::role::Model> {
    actor.require(Permission::RolesManage)?;
    actor.require_recent_mfa()?;
    let txn = crate::db::begin_write(db).await?;
    lock_organization(&txn, actor.organization_id).await?;
    let role = find_in_scope(&txn, actor, id).await?;
    ensure_name_free(&txn, actor, &spec.name, Some(id)).await?;
    let before = permissions_by_role(&txn, actor.tenant(), &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    // Both what the role holds now (its holders are managed through it) and
    // what it is to hold.
    let authority = actor.authority();
    authority.ensure_may_grant(&role.name, &before, "id")?;
    authority.ensure_may_grant(&spec.name, &spec.permissions, "permissions")?;
    let mut active: entity::role::ActiveModel = role.clone().into();
    active.name = Set(spec.name.clone());
    active.description = Set(spec.description.clone());
    if let Some(required) = &spec.required_certifications {
        active.required_certifications = Set((!required.is_empty()).then(|| json!(required)));
    }
    active.updated_at = Set(Utc::now());
    let role = active
        .update(&txn)
        .await
        .on_unique_violation(|| name_taken(&spec.name))?;
    actor
        .tenant()
        .delete_many::<entity::role_permission::Entity>()
        .filter(entity::role_permission::Column::RoleId.eq(id))
        .exec(&txn)
        .await?;
    write_permissions(&txn, id, &spec.permissions).await?;
    ensure_an_administrator_remains(&txn, actor.organization_id).await?;
    let added: BTreeSet<_> = spec.permissions.difference(&before).copied().collect();
    let removed: BTreeSet<_> = before.difference(&spec.permissions).copied().collect();
    audit::record(
        &txn,
        AuditEntry::by(actor, "role.update")
            .target("Role", id)
            .changes(json!({
                "name": role.name,
                "permissionsAdded": names(&added),
                "permissionsRemoved": names(&removed),
                "requiredCertifications": role.required_certifications(),
            })),
    )
    .await?;
    super::commit_authz_change(txn, store, actor.organization_id).await?;
    Ok(role)
}

/// Delete a role nobody holds (ROLES_MANAGE). Built-in roles may be edited, not deleted.
pub async fn delete(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<()> {
    actor.require(Permission::RolesManage)?;
    actor.require_recent_mfa()?;
    let txn = crate::db::begin_write(db).await?;
    let role = find_in_scope(&txn, actor, id).await?;
    ensure_may_give(&txn, &actor.authority(), std::slice::from_ref(&role), "id").await?;
    if role.built_in {
        return Err(AppError::Conflict(format!(
            "{} is a built-in role: edit its permissions instead of deleting it.",
            role.name
        )));
    }
    let holders = actor
        .tenant()
        .find::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::RoleId.eq(id))
        .count(&txn)
        .await?;
    if holders > 0 {
        return Err(AppError::Conflict(format!(
            "{} user{} hold{} the role {}; give them other roles first.",
            holders,
            if holders == 1 { "" } else { "s" },
            if holders == 1 { "s" } else { "" },
            role.name
        )));
    }
    actor
        .tenant()
        .delete_many::<entity::role::Entity>()
        .filter(entity::role::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "role.delete")
            .target("Role", id)
            .changes(json!({ "name": role.name })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A role of the actor's organisation; another organisation's is not found.
async fn find_in_scope(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::role::Model> {
    actor
        .scope::<entity::role::Entity>()
        .filter(entity::role::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Role"))
}

/// Resolve role ids given by a client to roles of the actor's organisation; unknown
/// ids (also other organisations') are a bad input on `field`.
pub async fn resolve_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
    field: &str,
) -> AppResult<Vec<entity::role::Model>> {
    let unique: BTreeSet<Uuid> = ids.iter().copied().collect();
    let roles = actor
        .scope::<entity::role::Entity>()
        .filter(entity::role::Column::Id.is_in(unique.iter().copied()))
        .all(db)
        .await?;
    if roles.len() != unique.len() {
        let known: BTreeSet<Uuid> = roles.iter().map(|r| r.id).collect();
        let unknown: Vec<String> = unique.difference(&known).map(ToString::to_string).collect();
        return Err(AppError::bad_input(
            field,
            format!("names roles that do not exist: {}", unknown.join(", ")),
        ));
    }
    Ok(roles)
}

async fn ensure_name_free(
    db: &impl ConnectionTrait,
    actor: &Actor,
    name: &str,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut select = actor
        .scope::<entity::role::Entity>()
        .filter(entity::role::Column::Name.eq(name));
    if let Some(id) = except {
        select = select.filter(entity::role::Column::Id.ne(id));
    }
    if select.count(db).await? > 0 {
        return Err(name_taken(name));
    }
    Ok(())
}

fn name_taken(name: &str) -> AppError {
    AppError::Conflict(format!("A role named {name:?} already exists."))
}

async fn write_permissions(
    db: &impl ConnectionTrait,
    role_id: Uuid,
    permissions: &BTreeSet<Permission>,
) -> AppResult<()> {
    if permissions.is_empty() {
        return Ok(());
    }
    entity::role_permission::Entity::insert_many(permissions.iter().map(|p| {
        entity::role_permission::ActiveModel {
            role_id: Set(role_id),
            permission: Set(p.as_str().to_owned()),
        }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

fn names(permissions: &BTreeSet<Permission>) -> Vec<&'static str> {
    permissions.iter().map(|p| p.as_str()).collect()
}

/// Serialise changes to who may administer an organisation: on PostgreSQL the
/// organisation's row is locked until the transaction ends, so two admins removing
/// each other at once cannot both succeed. (SQLite has one writer at a time.)
/// `FOR NO KEY UPDATE`: such changes wait for each other, not for records
/// being added to the organisation (whose foreign keys share its row).
pub async fn lock_organization(db: &impl ConnectionTrait, organization_id: Uuid) -> AppResult<()> {
    let mut select = Scope::of(organization_id).organization();
    if db.get_database_backend() == DbBackend::Postgres {
        select = select.lock(sea_orm::sea_query::LockType::NoKeyUpdate);
    }
    select.one(db).await?;
    Ok(())
}

/// Why a change that would leave no administrator is refused.
pub const NO_ADMINISTRATOR_LEFT: &str = "This would leave the organisation without an active user who can manage users and roles (USERS_WRITE and ROLES_MANAGE); give that right to someone else first.";

/// The organisation's administrators: active users who can manage users and
/// roles (USERS_WRITE and ROLES_MANAGE through their roles), and super admins.
fn administrators(organization_id: Uuid) -> sea_orm::Select<entity::user::Entity> {
    use entity::user::Column;
    let holders_of = super::holders::holding;
    Scope::of(organization_id)
        .accounts()
        .filter(Column::Status.eq("ACTIVE"))
        .filter(
            Condition::any().add(Column::IsSuperAdmin.eq(true)).add(
                Condition::all()
                    .add(Column::Id.in_subquery(holders_of(Permission::UsersWrite)))
                    .add(Column::Id.in_subquery(holders_of(Permission::RolesManage))),
            ),
        )
}

/// The ids of the organisation's administrators.
pub async fn administrator_ids(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> AppResult<BTreeSet<Uuid>> {
    let ids: Vec<Uuid> = administrators(organization_id)
        .select_only()
        .column(entity::user::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// The guard rail: an organisation always keeps an administrator. Called inside
/// the transaction of a change, after the change, so the check sees its effect
/// and a refusal rolls it back.
pub async fn ensure_an_administrator_remains(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> AppResult<()> {
    // One is enough: the first found ends the search.
    let any = administrators(organization_id)
        .select_only()
        .column(entity::user::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    if any.is_none() {
        return Err(AppError::Conflict(NO_ADMINISTRATOR_LEFT.to_owned()));
    }
    Ok(())
}
