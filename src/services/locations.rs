//! The organisation's practice locations: where staff work and providers
//! practise. Names are unique per organisation, whatever their case.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::{
    auth::{Actor, Permission},
    domain::{Phone, text},
    error::{AppError, AppResult, FieldError, OnConstraint, Validation},
};

/// A location's fields, valid by construction. `None` leaves a field as it is
/// when an import updates a location; the API gives every field.
#[derive(Clone, Debug, Default)]
pub struct LocationDetails {
    pub name: String,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<Phone>,
    pub active: Option<bool>,
}

/// The raw fields of a location, from the API or a file.
#[derive(Clone, Debug, Default)]
pub struct RawLocation<'a> {
    pub name: &'a str,
    pub address_line1: Option<&'a str>,
    pub address_line2: Option<&'a str>,
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub active: Option<&'a str>,
}

impl LocationDetails {
    /// Every bad field at once.
    pub fn parse(raw: &RawLocation<'_>) -> Result<Self, Vec<FieldError>> {
        let mut v = Validation::default();
        let name = v.check(text::required(raw.name, "name", 200));
        let line = |v: &mut Validation, value: Option<&str>, field: &str, max: usize| {
            v.check(text::optional(value, field, max)).flatten()
        };
        let address_line1 = line(&mut v, raw.address_line1, "addressLine1", 200);
        let address_line2 = line(&mut v, raw.address_line2, "addressLine2", 200);
        let city = line(&mut v, raw.city, "city", 100);
        let state = line(&mut v, raw.state, "state", 100);
        let postal_code = line(&mut v, raw.postal_code, "postalCode", 20);
        let phone = raw
            .phone
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .and_then(|p| v.check(Phone::parse(p, "phone")));
        let active = raw
            .active
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .and_then(|a| v.check(parse_active(a)));
        let errors = v.into_errors();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.unwrap_or_default(),
            address_line1,
            address_line2,
            city,
            state,
            postal_code,
            phone,
            active,
        })
    }
}

/// `yes`/`no` as spreadsheets say it: yes, no, true, false, y, n, 1, 0, active,
/// inactive, in any case.
pub fn parse_active(raw: &str) -> AppResult<bool> {
    match raw.trim().to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "active" => Ok(true),
        "no" | "n" | "false" | "0" | "inactive" => Ok(false),
        _ => Err(AppError::bad_input(
            "active",
            format!("\"{raw}\" is not yes or no"),
        )),
    }
}

/// The key names are unique by.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A new location of `organization_id` with `details`.
pub fn new_location(
    organization_id: Uuid,
    details: &LocationDetails,
    now: chrono::DateTime<Utc>,
) -> entity::location::Model {
    entity::location::Model {
        id: Uuid::now_v7(),
        organization_id,
        name: details.name.clone(),
        name_key: name_key(&details.name),
        address_line1: details.address_line1.clone(),
        address_line2: details.address_line2.clone(),
        city: details.city.clone(),
        state: details.state.clone(),
        postal_code: details.postal_code.clone(),
        phone: details.phone.as_ref().map(|p| p.as_str().to_owned()),
        active: details.active.unwrap_or(true),
        created_at: now,
        updated_at: now,
    }
}

/// `location` with the fields of `details` applied: every field when
/// `replace_all` (the API's whole input), else only the given ones (an import's
/// mapped, non-blank cells).
pub fn with_changes(
    location: &entity::location::Model,
    details: &LocationDetails,
    replace_all: bool,
) -> entity::location::ActiveModel {
    let mut active: entity::location::ActiveModel = location.clone().into();
    if location.name != details.name {
        active.name = Set(details.name.clone());
        active.name_key = Set(name_key(&details.name));
    }
    let set = |current: &Option<String>,
               new: &Option<String>,
               column: &mut sea_orm::ActiveValue<Option<String>>| {
        if (replace_all || new.is_some()) && current != new {
            *column = Set(new.clone());
        }
    };
    set(
        &location.address_line1,
        &details.address_line1,
        &mut active.address_line1,
    );
    set(
        &location.address_line2,
        &details.address_line2,
        &mut active.address_line2,
    );
    set(&location.city, &details.city, &mut active.city);
    set(&location.state, &details.state, &mut active.state);
    set(
        &location.postal_code,
        &details.postal_code,
        &mut active.postal_code,
    );
    set(
        &location.phone,
        &details.phone.as_ref().map(|p| p.as_str().to_owned()),
        &mut active.phone,
    );
    if let Some(flag) = details.active
        && flag != location.active
    {
        active.active = Set(flag);
    }
    active
}

fn name_taken() -> AppError {
    AppError::Conflict("A location of this organisation already has this name.".into())
}

pub async fn create(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    details: LocationDetails,
) -> AppResult<entity::location::Model> {
    actor.require(Permission::LocationsManage)?;
    let location = new_location(actor.organization_id, &details, Utc::now());
    entity::location::Entity::insert(entity::location::ActiveModel::from(location.clone()))
        .exec_without_returning(db)
        .await
        .on_unique_violation(name_taken)?;
    audit::record(
        db,
        AuditEntry::by(actor, "location.create")
            .target("Location", location.id)
            .changes(json!({ "name": location.name })),
    )
    .await?;
    Ok(location)
}

pub async fn update(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    id: Uuid,
    details: LocationDetails,
) -> AppResult<entity::location::Model> {
    actor.require(Permission::LocationsManage)?;
    let location = find(db, actor, id)
        .await?
        .ok_or(AppError::NotFound("Location"))?;
    let mut active = with_changes(&location, &details, true);
    if !active.is_changed() {
        return Ok(location);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await.on_unique_violation(name_taken)?;
    audit::record(
        db,
        AuditEntry::by(actor, "location.update")
            .target("Location", id)
            .changes(json!({ "name": updated.name, "active": updated.active })),
    )
    .await?;
    Ok(updated)
}

/// A location of the actor's organisation.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Option<entity::location::Model>> {
    Ok(actor
        .scope::<entity::location::Entity>()
        .filter(entity::location::Column::Id.eq(id))
        .one(db)
        .await?)
}

/// The organisation's locations by name; every staff user may read them.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> AppResult<Vec<entity::location::Model>> {
    Ok(actor
        .scope::<entity::location::Entity>()
        .order_by_asc(entity::location::Column::NameKey)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_reads_as_spreadsheets_write_it() {
        for yes in ["yes", "Yes", " Y ", "TRUE", "1", "active"] {
            assert!(parse_active(yes).expect(yes));
        }
        for no in ["no", "N", "false", "0", "Inactive"] {
            assert!(!parse_active(no).expect(no));
        }
        assert!(parse_active("maybe").is_err());
    }
}
