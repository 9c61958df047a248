//! What staff users keep up themselves after an import: their profile (names,
//! title, mobile phone, locale, email signature, front-end preferences), their
//! certifications and their weekly availability. Users change their own;
//! USERS_WRITE changes anyone's in the organisation. Email, roles, status and
//! the inactivity timeout stay with admins.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionSession, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::db::Scope;
use crate::{
    auth::{Actor, Permission, session::SessionStore},
    domain::{Locale, Phone, text},
    error::{AppError, AppResult, Validation},
};

/// The largest preferences object, serialised.
pub const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

/// Changes to one's own profile; `None` leaves a field as it is, `Some(None)`
/// clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<Option<String>>,
    pub mobile_phone: Option<Option<Phone>>,
    pub locale: Option<Option<Locale>>,
    pub email_signature: Option<Option<String>>,
    pub preferences: Option<Option<serde_json::Value>>,
    pub certifications: Option<Vec<CertificationDetails>>,
    pub availability: Option<Vec<Slot>>,
}

/// A certification, valid by construction.
#[derive(Clone, Debug)]
pub struct CertificationDetails {
    pub name: String,
    pub issuing_body: Option<String>,
    pub number: Option<String>,
    pub issued_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
}

/// One weekly slot: ISO day (1 = Monday), [start, end) in minutes after local
/// midnight, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub day_of_week: i16,
    pub start_minute: i32,
    pub end_minute: i32,
    pub location_id: Option<Uuid>,
}

impl Slot {
    fn overlaps(&self, other: &Slot) -> bool {
        self.day_of_week == other.day_of_week
            && self.start_minute < other.end_minute
            && other.start_minute < self.end_minute
    }
}

/// `"HH:MM"` as minutes after midnight; `24:00` ends a day.
pub fn parse_time(raw: &str, field: &str) -> AppResult<i32> {
    let bad = || AppError::bad_input(field, format!("\"{raw}\" is not a time as HH:MM"));
    let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub fn format_time(minutes: i32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Check a week of slots: each starts before it ends, and none overlaps
/// another of the same day (the error names the slot it overlaps).
pub fn check_slots(slots: &[Slot], v: &mut Validation) {
    for (i, slot) in slots.iter().enumerate() {
        if slot.start_minute >= slot.end_minute {
            v.add(format!("availability[{i}]"), "must start before it ends");
            continue;
        }
        if let Some(other) = slots[..i].iter().find(|o| o.overlaps(slot)) {
            v.add(
                format!("availability[{i}]"),
                format!(
                    "overlaps the slot {} {}–{}",
                    DAYS[usize::try_from(other.day_of_week - 1).unwrap_or(0)],
                    format_time(other.start_minute),
                    format_time(other.end_minute)
                ),
            );
        }
    }
}

/// The time zone of the actor's organisation (stored names are checked when
/// set; UTC should one not parse).
async fn organization_zone(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<chrono_tz::Tz> {
    let organization = super::organizations::find(db, actor, None).await?;
    Ok(organization.time_zone.parse().unwrap_or(chrono_tz::UTC))
}

/// A bounded JSON object.
pub fn parse_preferences(value: serde_json::Value, field: &str) -> AppResult<serde_json::Value> {
    if !value.is_object() {
        return Err(AppError::bad_input(field, "must be a JSON object"));
    }
    if value.to_string().len() > MAX_PREFERENCES_BYTES {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {MAX_PREFERENCES_BYTES} bytes as JSON"),
        ));
    }
    Ok(value)
}

/// A certification's fields, checked.
pub fn parse_certification(
    v: &mut Validation,
    index: usize,
    name: &str,
    issuing_body: Option<&str>,
    number: Option<&str>,
    issued_on: Option<NaiveDate>,
    expires_on: Option<NaiveDate>,
) -> Option<CertificationDetails> {
    let field = |f: &str| format!("certifications[{index}].{f}");
    let name = v.check(text::required(name, &field("name"), 200));
    let issuing_body = v
        .check(text::optional(issuing_body, &field("issuingBody"), 200))
        .flatten();
    let number = v
        .check(text::optional(number, &field("number"), 100))
        .flatten();
    if let (Some(from), Some(to)) = (issued_on, expires_on)
        && to < from
    {
        v.add(field("expiresOn"), "is before issuedOn");
    }
    Some(CertificationDetails {
        name: name?,
        issuing_body,
        number,
        issued_on,
        expires_on,
    })
}

/// Change a user's profile: one's own, or anyone's in the organisation with
/// USERS_WRITE.
pub async fn update(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    user_id: Uuid,
    changes: ProfileChanges,
) -> AppResult<entity::user::Model> {
    if user_id != actor.user_id {
        actor.require(Permission::UsersWrite)?;
    }
    let txn = crate::db::begin_write(db).await?;
    let user = super::users::find_manageable(&txn, actor, user_id).await?;
    if let Some(slots) = &changes.availability {
        let wanted: Vec<Uuid> = slots.iter().filter_map(|s| s.location_id).collect();
        if !wanted.is_empty() {
            let known: std::collections::HashSet<Uuid> = actor
                .scope::<entity::location::Entity>()
                .filter(entity::location::Column::Id.is_in(wanted.iter().copied()))
                .all(&txn)
                .await?
                .into_iter()
                .map(|l| l.id)
                .collect();
            let mut v = Validation::default();
            for (i, slot) in slots.iter().enumerate() {
                if let Some(id) = slot.location_id
                    && !known.contains(&id)
                {
                    v.add(format!("availability[{i}].locationId"), "no such location");
                }
            }
            v.finish()?;
        }
    }

    let mut active: entity::user::ActiveModel = user.clone().into();
    let mut changed = serde_json::Map::new();
    if let Some(first) = changes.first_name
        && first != user.first_name
    {
        changed.insert("firstName".into(), json!(first));
        active.first_name = Set(first);
    }
    if let Some(last) = changes.last_name
        && last != user.last_name
    {
        changed.insert("lastName".into(), json!(last));
        active.last_name = Set(last);
    }
    if let Some(title) = changes.title
        && title != user.title
    {
        changed.insert("title".into(), json!(title));
        active.title = Set(title);
    }
    if let Some(phone) = changes
        .mobile_phone
        .map(|p| p.map(|p| p.as_str().to_owned()))
        && phone != user.mobile_phone
    {
        changed.insert("mobilePhone".into(), json!(phone));
        active.mobile_phone = Set(phone);
    }
    if let Some(locale) = changes.locale.map(|l| l.map(|l| l.as_str().to_owned()))
        && locale != user.locale
    {
        changed.insert("locale".into(), json!(locale));
        active.locale = Set(locale);
    }
    if let Some(signature) = changes.email_signature
        && signature != user.email_signature
    {
        changed.insert("emailSignature".into(), json!(true));
        active.email_signature = Set(signature);
    }
    if let Some(preferences) = changes.preferences
        && preferences != user.preferences
    {
        changed.insert("preferences".into(), json!(true));
        active.preferences = Set(preferences);
    }
    let now = Utc::now();
    if let Some(certifications) = changes.certifications {
        use entity::certification::{ActiveModel, Column, Entity};
        if user_id == actor.user_id {
            ensure_not_vouching_for_oneself(&txn, actor.tenant(), user_id, &certifications).await?;
        }
        actor
            .tenant()
            .delete_many::<Entity>()
            .filter(Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        if !certifications.is_empty() {
            Entity::insert_many(certifications.iter().map(|c| ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(user.organization_id),
                user_id: Set(user_id),
                name: Set(c.name.clone()),
                issuing_body: Set(c.issuing_body.clone()),
                number: Set(c.number.clone()),
                issued_on: Set(c.issued_on),
                expires_on: Set(c.expires_on),
                created_at: Set(now),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        changed.insert(
            "certifications".into(),
            json!(certifications.iter().map(|c| &c.name).collect::<Vec<_>>()),
        );
    }
    if let Some(slots) = changes.availability {
        use entity::availability_slot::{ActiveModel, Column, Entity};
        actor
            .tenant()
            .delete_many::<Entity>()
            .filter(Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        if !slots.is_empty() {
            Entity::insert_many(slots.iter().map(|s| ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(user.organization_id),
                user_id: Set(user_id),
                day_of_week: Set(s.day_of_week),
                start_minute: Set(s.start_minute),
                end_minute: Set(s.end_minute),
                location_id: Set(s.location_id),
                created_at: Set(now),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        changed.insert("availability".into(), json!(slots.len()));
    }
    let user = if active.is_changed() {
        active.updated_at = Set(now);
        active.update(&txn).await?
    } else {
        user
    };
    if !changed.is_empty() {
        audit::record(
            &txn,
            AuditEntry::by(actor, "user.profile_update")
                .target("User", user_id)
                .changes(serde_json::Value::Object(changed)),
        )
        .await?;
    }
    txn.commit().await?;
    store.bump_user_epoch(user_id).await?;
    Ok(user)
}

/// A certification that one of a user's roles requires is kept by someone
/// else (USERS_WRITE): holders would otherwise lift their own suspension
/// with a date of their choosing. `FORBIDDEN` when `new` adds, removes or
/// changes one.
async fn ensure_not_vouching_for_oneself(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_id: Uuid,
    new: &[CertificationDetails],
) -> AppResult<()> {
    use super::credentials::normalized;
    use sea_orm::{JoinType, QuerySelect, RelationTrait};
    let roles = scope
        .find::<entity::role::Entity>()
        .join(JoinType::InnerJoin, entity::role::Relation::UserRoles.def())
        .filter(entity::user_role::Column::UserId.eq(user_id))
        .filter(entity::role::Column::RequiredCertifications.is_not_null())
        .all(db)
        .await?;
    let required: std::collections::BTreeSet<String> = roles
        .iter()
        .flat_map(|r| r.required_certifications())
        .map(|n| normalized(&n))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let key = |name: &str,
               issued: Option<NaiveDate>,
               expires: Option<NaiveDate>,
               number: Option<&str>| {
        (normalized(name), issued, expires, number.map(str::to_owned))
    };
    let mut before: Vec<_> = scope
        .find::<entity::certification::Entity>()
        .filter(entity::certification::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .into_iter()
        .filter(|c| required.contains(&normalized(&c.name)))
        .map(|c| key(&c.name, c.issued_on, c.expires_on, c.number.as_deref()))
        .collect();
    let mut after: Vec<_> = new
        .iter()
        .filter(|c| required.contains(&normalized(&c.name)))
        .map(|c| key(&c.name, c.issued_on, c.expires_on, c.number.as_deref()))
        .collect();
    before.sort();
    after.sort();
    if before != after {
        return Err(AppError::forbidden(
            "A certification one of your roles requires is kept by an administrator: ask them to record it.",
        ));
    }
    Ok(())
}

/// The certifications of each user.
pub async fn certifications_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<entity::certification::Model>>> {
    use entity::certification::{Column, Entity};
    let mut by_user: HashMap<Uuid, Vec<_>> = HashMap::new();
    for c in scope
        .find::<Entity>()
        .filter(Column::UserId.is_in(user_ids.iter().copied()))
        .order_by_asc(Column::ExpiresOn)
        .all(db)
        .await?
    {
        by_user.entry(c.user_id).or_default().push(c);
    }
    Ok(by_user)
}

/// The weekly slots of each user, by day and time.
pub async fn availability_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<entity::availability_slot::Model>>> {
    use entity::availability_slot::{Column, Entity};
    let mut by_user: HashMap<Uuid, Vec<_>> = HashMap::new();
    for s in scope
        .find::<Entity>()
        .filter(Column::UserId.is_in(user_ids.iter().copied()))
        .order_by_asc(Column::DayOfWeek)
        .order_by_asc(Column::StartMinute)
        .all(db)
        .await?
    {
        by_user.entry(s.user_id).or_default().push(s);
    }
    Ok(by_user)
}

/// The organisation's certifications that expire within `days` days of today
/// (in the organisation's time zone), expired ones first (USERS_READ).
pub async fn expiring_certifications(
    db: &impl ConnectionTrait,
    actor: &Actor,
    days: i32,
) -> AppResult<Vec<entity::certification::Model>> {
    use entity::certification::{Column, Entity};
    actor.require(Permission::UsersRead)?;
    if !(0..=3650).contains(&days) {
        return Err(AppError::bad_input(
            "withinDays",
            "must be between 0 and 3650",
        ));
    }
    let today = Utc::now()
        .with_timezone(&organization_zone(db, actor).await?)
        .date_naive();
    let until = today + chrono::Duration::days(i64::from(days));
    Ok(actor
        .tenant()
        .find::<Entity>()
        .filter(Column::ExpiresOn.lte(until))
        .order_by_asc(Column::ExpiresOn)
        .order_by_asc(Column::Name)
        .all(db)
        .await?)
}

/// Active staff users scheduled at `at` (at `location_id`, when given), by
/// their weekly availability in the organisation's time zone (USERS_READ).
pub async fn available_staff(
    db: &impl ConnectionTrait,
    actor: &Actor,
    at: DateTime<Utc>,
    location_id: Option<Uuid>,
) -> AppResult<Vec<entity::user::Model>> {
    use entity::availability_slot::{Column, Entity};
    actor.require(Permission::UsersRead)?;
    let local = at.with_timezone(&organization_zone(db, actor).await?);
    let day = i16::try_from(local.weekday().number_from_monday()).unwrap_or(1);
    let minute = i32::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
    let mut slots = actor
        .tenant()
        .find::<Entity>()
        .filter(Column::DayOfWeek.eq(day))
        .filter(Column::StartMinute.lte(minute))
        .filter(Column::EndMinute.gt(minute));
    if let Some(location) = location_id {
        slots = slots.filter(Column::LocationId.eq(location));
    }
    let user_ids: Vec<Uuid> = slots
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.user_id)
        .collect();
    Ok(actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.is_in(user_ids))
        .filter(entity::user::Column::Status.eq("ACTIVE"))
        .order_by_asc(entity::user::Column::LastName)
        .order_by_asc(entity::user::Column::FirstName)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_hh_mm_within_a_day() {
        assert_eq!(parse_time("09:00", "t").ok(), Some(540));
        assert_eq!(parse_time("24:00", "t").ok(), Some(1440));
        for bad in ["9:00", "24:30", "12:60", "noon", "12-00", ""] {
            assert!(parse_time(bad, "t").is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_slots_name_the_slot_they_overlap() {
        let slot = |day, start, end| Slot {
            day_of_week: day,
            start_minute: start,
            end_minute: end,
            location_id: None,
        };
        let mut v = Validation::default();
        check_slots(
            &[
                slot(1, 540, 720),
                slot(1, 720, 900),
                slot(1, 600, 660),
                slot(2, 600, 660),
                slot(3, 700, 600),
            ],
            &mut v,
        );
        let errors = v.into_errors();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].field, "availability[2]");
        assert_eq!(errors[0].message, "overlaps the slot Monday 09:00–12:00");
        assert_eq!(errors[1].field, "availability[4]");
    }
}
