//! Undoing an import. Each row a job writes keeps what it changed (its `undo`):
//! the records it created, the fields it changed with their values before and
//! after, and the roles before and after. A job reverting the import reads
//! them back in batches and, for each record still as the import left it,
//! removes what it created and gives changed fields and roles their earlier
//! values. A record someone changed since is left alone and reported.
//!
//! USERS and PROVIDERS imports keep undo records; PATIENTS and LOCATIONS
//! imports do not, and cannot be reverted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseTransaction, PaginatorTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{
    fields::ImportKind,
    row::{RowResult, RowStatus},
};
use crate::db::Scope;
use crate::{
    auth::{Authority, Permission, access, session::SessionStore},
    error::{AppResult, FieldError},
    services::roles,
};

/// What one written row changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RecordChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<RecordChange>,
    /// The user's roles before and after, when the row set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<RolesChange>,
}

/// A record a row created, or the fields it changed: `field: [before, after]`
/// (a created record's fields have no value before).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordChange {
    pub id: Uuid,
    #[serde(default)]
    pub created: bool,
    pub fields: BTreeMap<String, (Value, Value)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolesChange {
    pub before: Vec<Uuid>,
    pub after: Vec<Uuid>,
}

impl Undo {
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.provider.is_none() && self.roles.is_none()
    }

    pub fn to_json(&self) -> Option<Value> {
        (!self.is_empty()).then(|| serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

/// The fields an import owns on a record: what it may set, and so what
/// undoing it gives back. `snapshot` reads them, `changes` lists those an
/// active model sets with their values before and after, and `restore` sets
/// one from its stored value.
macro_rules! owned_fields {
    ($module:ident: $($field:ident),+ $(,)?) => {
        pub mod $module {
            use std::collections::BTreeMap;

            use sea_orm::ActiveValue::Set;
            use serde_json::{Value, json};

            /// The fields' names.
            pub const FIELDS: &[&str] = &[$(stringify!($field)),+];

            /// A created record's fields, those without a value left out.
            pub fn snapshot(model: &entity::$module::Model) -> BTreeMap<String, (Value, Value)> {
                let mut fields = BTreeMap::new();
                $(
                    let value = json!(model.$field);
                    if !value.is_null() {
                        fields.insert(stringify!($field).to_owned(), (Value::Null, value));
                    }
                )+
                fields
            }

            pub fn changes(
                before: &entity::$module::Model,
                after: &entity::$module::ActiveModel,
            ) -> BTreeMap<String, (Value, Value)> {
                let mut changed = BTreeMap::new();
                $(
                    if let Set(value) = &after.$field {
                        changed.insert(
                            stringify!($field).to_owned(),
                            (json!(before.$field), json!(value)),
                        );
                    }
                )+
                changed
            }

            pub fn current(model: &entity::$module::Model, field: &str) -> Value {
                match field {
                    $(stringify!($field) => json!(model.$field),)+
                    _ => Value::Null,
                }
            }

            pub fn restore(
                active: &mut entity::$module::ActiveModel,
                field: &str,
                value: Value,
            ) -> Result<(), serde_json::Error> {
                match field {
                    $(stringify!($field) => active.$field = Set(serde_json::from_value(value)?),)+
                    _ => {}
                }
                Ok(())
            }
        }
    };
}

owned_fields!(user:
    first_name,
    last_name,
    title,
    employee_status,
    mobile_phone,
    locale,
    external_id,
    idle_timeout_minutes,
);

owned_fields!(provider:
    npi,
    organization_role,
    specialty,
    address_line1,
    address_line2,
    city,
    state,
    postal_code,
    phone,
    billing_tax_id,
);

/// The fields of a record that no longer hold the value the import left: of
/// a created record every field (those it left without a value are not
/// stored), of a changed one the fields it changed.
fn changed_since<'c>(
    change: &'c RecordChange,
    all_fields: &'c [&'c str],
    current: impl Fn(&str) -> Value + 'c,
) -> impl Iterator<Item = &'c str> {
    let fields: Vec<&str> = if change.created {
        all_fields.to_vec()
    } else {
        change.fields.keys().map(String::as_str).collect()
    };
    fields.into_iter().filter(move |field| {
        let left = change
            .fields
            .get(*field)
            .map_or(&Value::Null, |(_, after)| after);
        current(field) != *left
    })
}

/// Why a row's record is left alone: the fields changed since the import.
fn left_alone(fields: &[String]) -> Vec<FieldError> {
    fields
        .iter()
        .map(|field| {
            FieldError::new(
                field.clone(),
                "was changed after the import, so the record is left as it is",
            )
        })
        .collect()
}

/// The field names a client knows for stored column names.
fn client_name(column: &str) -> String {
    let mut name = String::with_capacity(column.len());
    let mut upper = false;
    for c in column.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            name.extend(c.to_uppercase());
            upper = false;
        } else {
            name.push(c);
        }
    }
    name
}

/// Revert one batch of a job's written rows in the reverting job's
/// transaction, under the access rule for `authority` (whoever started the
/// revert, with the rights they hold now). Every row gets an outcome: UPDATED
/// when undone, SKIPPED when its record changed since (the changed fields as
/// its errors), FAILED when the rule refuses it. Whether any user's access
/// changed, so the caller moves the authorisation epoch.
pub async fn revert_batch(
    txn: &DatabaseTransaction,
    store: &dyn SessionStore,
    organization_id: Uuid,
    kind: ImportKind,
    rows: Vec<entity::import_row::Model>,
    authority: &Authority,
) -> AppResult<(Vec<RowResult>, bool)> {
    // The rights the import itself needed, as its rows are checked.
    let lacking = std::iter::once(&Permission::ImportsRun)
        .chain(kind.write_permissions())
        .find_map(|p| authority.require_for(*p, "row").err());
    if let Some(refusal) = lacking {
        let error = FieldError::from(refusal);
        let refused = rows
            .into_iter()
            .map(|row| {
                RowResult::failed(
                    usize::try_from(row.row_number).unwrap_or(0),
                    row.identity,
                    vec![error.clone()],
                    serde_json::from_value(row.row_values).unwrap_or_default(),
                )
            })
            .collect();
        return Ok((refused, false));
    }
    let planned: Vec<(entity::import_row::Model, Undo)> = rows
        .into_iter()
        .map(|row| {
            let undo = row
                .undo
                .clone()
                .and_then(|u| serde_json::from_value(u).ok())
                .unwrap_or_default();
            (row, undo)
        })
        .collect();
    let user_ids: Vec<Uuid> = planned
        .iter()
        .filter_map(|(_, undo)| undo.user.as_ref().map(|u| u.id))
        .collect();
    let provider_ids: Vec<Uuid> = planned
        .iter()
        .filter_map(|(_, undo)| undo.provider.as_ref().map(|p| p.id))
        .collect();
    let users: HashMap<Uuid, entity::user::Model> = Scope::of(organization_id)
        .find::<entity::user::Entity>()
        .filter(entity::user::Column::Id.is_in(user_ids.iter().copied()))
        .all(txn)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let providers: HashMap<Uuid, entity::provider::Model> = Scope::of(organization_id)
        .find::<entity::provider::Entity>()
        .filter(entity::provider::Column::Id.is_in(provider_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    // Who may administer the organisation changes only under its lock, and
    // one administrator always remains.
    roles::lock_organization(txn, organization_id).await?;
    let current_roles = roles::roles_by_user(txn, Scope::of(organization_id), &user_ids).await?;
    let held = roles::permissions_by_user(txn, Scope::of(organization_id), &user_ids).await?;
    let role_permissions = roles::permissions_of_organization_roles(txn, organization_id).await?;
    let role_names: HashMap<Uuid, String> = super::staff::roles_by_name(txn, organization_id)
        .await?
        .into_values()
        .map(|r| (r.id, r.name))
        .collect();
    let mut administrators = roles::administrator_ids(txn, organization_id).await?;

    let now = Utc::now();
    let mut access_changed = false;
    let mut results = Vec::with_capacity(planned.len());
    for (row, undo) in planned {
        let outcome = |status: RowStatus, errors: Vec<FieldError>| RowResult {
            number: usize::try_from(row.row_number).unwrap_or(0),
            status,
            identity: row.identity.clone(),
            record_id: undo.user.as_ref().map(|u| u.id),
            errors,
            values: serde_json::from_value(row.row_values.clone()).unwrap_or_default(),
            undo: None,
        };
        let Some(user_change) = &undo.user else {
            results.push(outcome(RowStatus::Skipped, Vec::new()));
            continue;
        };
        let Some(user) = users.get(&user_change.id) else {
            results.push(outcome(
                RowStatus::Skipped,
                vec![FieldError::new("email", "the user no longer exists")],
            ));
            continue;
        };

        // Left alone when anyone changed the record since the import.
        let mut changed: Vec<String> =
            changed_since(user_change, user::FIELDS, |f| user::current(user, f))
                .map(client_name)
                .collect();
        let provider = undo.provider.as_ref().map(|p| (p, providers.get(&p.id)));
        match provider {
            Some((_, None)) => changed.push("provider".to_owned()),
            Some((change, Some(current))) => changed.extend(
                changed_since(change, provider::FIELDS, |f| provider::current(current, f))
                    .map(client_name),
            ),
            None => {}
        }
        let roles_now: BTreeSet<Uuid> = current_roles
            .get(&user.id)
            .map(|rs| rs.iter().map(|r| r.id).collect())
            .unwrap_or_default();
        let roles_left: Option<BTreeSet<Uuid>> = undo
            .roles
            .as_ref()
            .map(|r| r.after.iter().copied().collect());
        if roles_left.as_ref().is_some_and(|after| *after != roles_now) {
            changed.push("roles".to_owned());
        }
        if !changed.is_empty() {
            results.push(outcome(RowStatus::Skipped, left_alone(&changed)));
            continue;
        }

        // The access rule, as for the import itself: the reverter must be
        // able to manage the user and to give and take each role involved.
        let roles_after_revert: BTreeSet<Uuid> = if user_change.created {
            BTreeSet::new()
        } else {
            undo.roles
                .as_ref()
                .map_or_else(|| roles_now.clone(), |r| r.before.iter().copied().collect())
        };
        let refusal = check_rule(
            authority,
            user,
            held.get(&user.id).cloned().unwrap_or_default(),
            roles_now.symmetric_difference(&roles_after_revert),
            &role_permissions,
            &role_names,
        );
        if let Err(refusal) = refusal {
            results.push(outcome(RowStatus::Failed, vec![refusal.into()]));
            continue;
        }
        let stays_administrator = !user_change.created
            && super::staff::is_administrator(
                user,
                &access::union_of(
                    &roles_after_revert.iter().copied().collect::<Vec<_>>(),
                    &role_permissions,
                ),
            );
        if administrators.contains(&user.id) && !stays_administrator {
            if administrators.len() == 1 {
                results.push(outcome(
                    RowStatus::Failed,
                    vec![FieldError::new("roles", roles::NO_ADMINISTRATOR_LEFT)],
                ));
                continue;
            }
            administrators.remove(&user.id);
        }

        if user_change.created {
            let own_provider = match provider {
                Some((change, Some(current))) if change.created => Some(current.id),
                _ => None,
            };
            remove_created_user(txn, store, user, own_provider).await?;
        } else {
            restore_user(txn, user, user_change, now).await?;
            match provider {
                Some((change, Some(current))) if change.created => {
                    Scope::of(organization_id)
                        .delete_by_id::<entity::provider::Entity>(current.id)
                        .exec(txn)
                        .await?;
                }
                Some((change, Some(current))) => {
                    let mut active: entity::provider::ActiveModel = current.clone().into();
                    for (field, (before, _)) in &change.fields {
                        provider::restore(&mut active, field, before.clone())
                            .map_err(|e| anyhow::anyhow!("undo record unreadable: {e}"))?;
                    }
                    active.updated_at = ActiveValue::Set(now);
                    active.update(txn).await?;
                }
                _ => {}
            }
            if undo.roles.is_some() && roles_after_revert != roles_now {
                set_roles(
                    txn,
                    Scope::of(organization_id),
                    user.id,
                    &roles_after_revert,
                )
                .await?;
            }
        }
        access_changed = true;
        results.push(outcome(RowStatus::Updated, Vec::new()));
    }
    Ok((results, access_changed))
}

/// Whether `authority` may revert a change to `user`: manage them as they are
/// now, and give or take each of `roles`.
fn check_rule<'r>(
    authority: &Authority,
    user: &entity::user::Model,
    held: BTreeSet<Permission>,
    mut roles: impl Iterator<Item = &'r Uuid>,
    role_permissions: &BTreeMap<Uuid, BTreeSet<Permission>>,
    role_names: &HashMap<Uuid, String>,
) -> Result<(), access::Refusal> {
    authority.ensure_may_manage(user, &held, "email")?;
    roles.try_for_each(|role| {
        authority.require_for(Permission::RolesManage, "roles")?;
        authority.ensure_may_grant(
            role_names.get(role).map_or("a role", String::as_str),
            &role_permissions.get(role).cloned().unwrap_or_default(),
            "roles",
        )
    })
}

/// Remove a user the import created. One who has used the account (signed in
/// or set a password), or whom records made since name, is deactivated
/// instead: their sessions end and they lose the roles the import gave.
async fn remove_created_user(
    txn: &DatabaseTransaction,
    store: &dyn SessionStore,
    user: &entity::user::Model,
    own_provider: Option<Uuid>,
) -> AppResult<()> {
    let used = user.last_login_at.is_some() || user.password_hash.is_some();
    if !used && !named_since(txn, user, own_provider).await? {
        Scope::of(user.organization_id)
            .delete_by_id::<entity::user::Entity>(user.id)
            .exec(txn)
            .await?;
        return Ok(());
    }
    Scope::of(user.organization_id)
        .delete_many::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::UserId.eq(user.id))
        .exec(txn)
        .await?;
    if user.status != "INACTIVE" {
        crate::services::users::set_status(txn, user.clone(), "INACTIVE").await?;
    }
    // Before the commit: if the store is down, the batch is retried.
    store.revoke_user(user.id, None).await?;
    Ok(())
}

/// Whether records someone made since the import name the user: a provider
/// profile (other than the one the import made with them), a place in a care
/// team, a certification, availability, a second factor, a single sign-on
/// link, an emergency access grant or an access review's item. Deleting the
/// user would delete those too, so the user is deactivated instead.
async fn named_since(
    txn: &DatabaseTransaction,
    user: &entity::user::Model,
    own_provider: Option<Uuid>,
) -> AppResult<bool> {
    async fn any<E: crate::db::InScope>(
        txn: &DatabaseTransaction,
        user: &entity::user::Model,
        column: E::Column,
        besides: Option<(E::Column, Uuid)>,
    ) -> AppResult<bool>
    where
        E::Model: Sync,
    {
        let mut query = Scope::of(user.organization_id)
            .find::<E>()
            .filter(column.eq(user.id));
        if let Some((id, own)) = besides {
            query = query.filter(id.ne(own));
        }
        Ok(query.count(txn).await? > 0)
    }
    use entity::{
        access_review_item as review, authenticator, availability_slot, break_glass_grant,
        certification, patient_assignment, provider, sso_identity,
    };
    Ok(any::<provider::Entity>(
        txn,
        user,
        provider::Column::UserId,
        own_provider.map(|id| (provider::Column::Id, id)),
    )
    .await?
        || any::<patient_assignment::Entity>(txn, user, patient_assignment::Column::UserId, None)
            .await?
        || any::<certification::Entity>(txn, user, certification::Column::UserId, None).await?
        || any::<availability_slot::Entity>(txn, user, availability_slot::Column::UserId, None)
            .await?
        || any::<authenticator::Entity>(txn, user, authenticator::Column::UserId, None).await?
        || any::<sso_identity::Entity>(txn, user, sso_identity::Column::UserId, None).await?
        || any::<break_glass_grant::Entity>(txn, user, break_glass_grant::Column::UserId, None)
            .await?
        || any::<review::Entity>(txn, user, review::Column::UserId, None).await?)
}

/// Give the fields an import changed their earlier values.
async fn restore_user(
    txn: &DatabaseTransaction,
    user: &entity::user::Model,
    change: &RecordChange,
    now: chrono::DateTime<Utc>,
) -> AppResult<()> {
    if change.fields.is_empty() {
        return Ok(());
    }
    let mut active: entity::user::ActiveModel = user.clone().into();
    for (field, (before, _)) in &change.fields {
        self::user::restore(&mut active, field, before.clone())
            .map_err(|e| anyhow::anyhow!("undo record unreadable: {e}"))?;
    }
    active.updated_at = ActiveValue::Set(now);
    active.update(txn).await?;
    Ok(())
}

async fn set_roles(
    txn: &DatabaseTransaction,
    scope: Scope,
    user_id: Uuid,
    roles: &BTreeSet<Uuid>,
) -> AppResult<()> {
    scope
        .delete_many::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    crate::db::bulk::insert_all(
        txn,
        roles.iter().map(|role_id| entity::user_role::ActiveModel {
            user_id: ActiveValue::Set(user_id),
            role_id: ActiveValue::Set(*role_id),
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_column_names_read_as_the_api_names_them() {
        assert_eq!(client_name("first_name"), "firstName");
        assert_eq!(client_name("idle_timeout_minutes"), "idleTimeoutMinutes");
        assert_eq!(client_name("address_line1"), "addressLine1");
        assert_eq!(client_name("title"), "title");
    }

    #[test]
    fn an_empty_undo_is_not_stored() {
        assert_eq!(Undo::default().to_json(), None);
        let undo = Undo {
            roles: Some(RolesChange {
                before: Vec::new(),
                after: vec![Uuid::nil()],
            }),
            ..Undo::default()
        };
        let stored = undo.to_json().expect("stored");
        assert_eq!(serde_json::from_value::<Undo>(stored).expect("read"), undo);
    }
}
