//! Credential-aware roles: a role may require certifications by name
//! (`requiredCertifications`, e.g. "State licence"). A holder who has no
//! valid certification of each required name has the role suspended: its
//! permissions do not count, from the moment the last valid one lapses, at
//! their next request, on every instance.
//!
//! A certification is valid through its `expiresOn` date in the
//! organisation's time zone (it lapses at the next local midnight), forever
//! without one. Names match whatever their case and surrounding spaces.
//! The actor's cached record knows the moment its standing next changes by
//! time alone and is read again from then; a change of certifications or of
//! a role's requirements moves the epochs, so adding a valid certification
//! lifts a suspension at the holder's next request.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
    TransactionSession,
};
use uuid::Uuid;

use crate::db::{Scope, global, unscoped};
use crate::error::AppResult;

/// Where a user stands with the certifications their roles require.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// The roles held but suspended now.
    pub suspended: BTreeSet<Uuid>,
    /// The next moment a held role's requirement lapses, by time alone.
    pub next_change: Option<DateTime<Utc>>,
}

/// The standing of `user_id` now.
pub async fn standing(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_id: Uuid,
) -> AppResult<Standing> {
    Ok(standings(db, scope, &[user_id])
        .await?
        .remove(&user_id)
        .unwrap_or_default())
}

/// The standing of each of `user_ids` now: see [`suspended_roles`]. Users
/// whose roles require no certification are left out (their standing is the
/// default).
pub async fn standings(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Standing>> {
    Ok(suspended_roles(db, scope, user_ids)
        .await?
        .into_iter()
        .map(|(user, (standing, _))| (user, standing))
        .collect())
}

/// The standing of each of `user_ids` now, with the roles it suspends, in
/// three statements however many they are: the roles they hold that require
/// certifications, their organisations' time zones, and their
/// certifications. Users whose roles require none are left out.
pub async fn suspended_roles(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, (Standing, Vec<entity::role::Model>)>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let held_roles: Vec<(Uuid, entity::role::Model)> = scope
        .find::<entity::role::Entity>()
        .join(JoinType::InnerJoin, entity::role::Relation::UserRoles.def())
        .filter(entity::user_role::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(entity::role::Column::RequiredCertifications.is_not_null())
        .select_also(entity::user_role::Entity)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(role, link)| Some((link?.user_id, role)))
        .collect();
    let mut requiring: HashMap<Uuid, Vec<(Uuid, Vec<String>)>> = HashMap::new();
    let mut organization_of: HashMap<Uuid, Uuid> = HashMap::new();
    for (user_id, role) in &held_roles {
        let names = role.required_certifications();
        if !names.is_empty() {
            requiring
                .entry(*user_id)
                .or_default()
                .push((role.id, names));
            organization_of.insert(*user_id, role.organization_id);
        }
    }
    if requiring.is_empty() {
        return Ok(HashMap::new());
    }
    let organizations: BTreeSet<Uuid> = organization_of.values().copied().collect();
    let time_zones: HashMap<Uuid, chrono_tz::Tz> = scope
        .organization()
        .select_only()
        .column(entity::organization::Column::Id)
        .column(entity::organization::Column::TimeZone)
        .filter(entity::organization::Column::Id.is_in(organizations))
        .into_tuple::<(Uuid, Option<String>)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, tz)| {
            let zone = tz
                .and_then(|tz| tz.parse::<chrono_tz::Tz>().ok())
                .unwrap_or(chrono_tz::UTC);
            (id, zone)
        })
        .collect();
    let mut held: HashMap<Uuid, Vec<entity::certification::Model>> = HashMap::new();
    for certification in scope
        .find::<entity::certification::Entity>()
        .filter(entity::certification::Column::UserId.is_in(requiring.keys().copied()))
        .all(db)
        .await?
    {
        held.entry(certification.user_id)
            .or_default()
            .push(certification);
    }
    let now = Utc::now();
    Ok(requiring
        .into_iter()
        .map(|(user_id, roles)| {
            let zone = organization_of
                .get(&user_id)
                .and_then(|org| time_zones.get(org))
                .copied()
                .unwrap_or(chrono_tz::UTC);
            let certifications = held.remove(&user_id).unwrap_or_default();
            let standing = judge(&roles, &certifications, zone, now);
            let suspended = held_roles
                .iter()
                .filter(|(user, role)| *user == user_id && standing.suspended.contains(&role.id))
                .map(|(_, role)| role.clone())
                .collect();
            (user_id, (standing, suspended))
        })
        .collect())
}

/// The standing, at `now`, of a user holding the roles `requiring` (each
/// with the names it requires) and the certifications `held`.
pub fn judge(
    requiring: &[(Uuid, Vec<String>)],
    held: &[entity::certification::Model],
    time_zone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Standing {
    // For each name: when its validity ends (None: never), if it is valid now.
    let mut valid_until: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
    for certification in held {
        let lapses = certification.expires_on.map(|day| lapse(day, time_zone));
        if lapses.is_some_and(|at| at <= now) {
            continue;
        }
        let entry = valid_until
            .entry(normalized(&certification.name))
            .or_insert(lapses);
        *entry = match (*entry, lapses) {
            (None, _) | (_, None) => None,
            (Some(a), Some(b)) => Some(a.max(b)),
        };
    }
    let mut standing = Standing::default();
    for (role_id, names) in requiring {
        let mut lapses: Option<DateTime<Utc>> = None;
        let mut suspended = false;
        for name in names {
            match valid_until.get(&normalized(name)) {
                None => suspended = true,
                Some(Some(at)) => lapses = Some(lapses.map_or(*at, |l| l.min(*at))),
                Some(None) => {}
            }
        }
        if suspended {
            standing.suspended.insert(*role_id);
        } else if let Some(at) = lapses {
            standing.next_change = Some(standing.next_change.map_or(at, |n| n.min(at)));
        }
    }
    standing
}

/// The moment a certification expiring on `day` stops being valid: the
/// local midnight that ends that day.
pub fn lapse(day: NaiveDate, time_zone: chrono_tz::Tz) -> DateTime<Utc> {
    let next = day.succ_opt().unwrap_or(day);
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    time_zone
        .from_local_datetime(&midnight)
        .earliest()
        // A midnight skipped by a clock change: the hour after it.
        .or_else(|| {
            time_zone
                .from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
}

/// A certification's name as requirements compare it.
pub fn normalized(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Certification names a role requires, as given: trimmed, none empty, each
/// once (whatever its case), at most 20 of at most 100 characters.
pub fn parse_required(names: &[String], v: &mut crate::error::Validation) -> Option<Vec<String>> {
    let mut parsed: Vec<String> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("requiredCertifications[{i}]");
        match crate::domain::text::required(name, &field, 100) {
            Ok(name) => {
                if !parsed.iter().any(|p| normalized(p) == normalized(&name)) {
                    parsed.push(name);
                }
            }
            Err(err) => {
                v.check::<()>(Err(err));
            }
        }
    }
    if parsed.len() > 20 {
        v.add("requiredCertifications", "at most 20 certifications");
        return None;
    }
    Some(parsed)
}

/// Days before an expiry that holders and their admins are reminded.
pub const REMINDERS: [i64; 3] = [30, 7, 1];

/// Remind of the coming expiry of every certification a held role requires:
/// the holder and the organisation's user admins (USERS_WRITE) are emailed
/// 30, 7 and 1 days before it (each once; a certification entered late gets
/// only the nearest). How many reminders went.
pub async fn send_due_reminders(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    now: DateTime<Utc>,
) -> AppResult<usize> {
    use entity::certification::{Column, Entity};
    let today = now.date_naive();
    // A day's margin each side: "today" is the organisation's, not UTC's.
    let soon = unscoped::find::<Entity>()
        .filter(Column::ExpiresOn.gte(today - Duration::days(1)))
        .filter(Column::ExpiresOn.lte(today + Duration::days(REMINDERS[0] + 1)))
        .all(db)
        .await?;
    let mut sent = 0;
    for certification in soon {
        let Some(expires_on) = certification.expires_on else {
            continue;
        };
        let Some(organization) =
            global::find_by_id::<entity::organization::Entity>(certification.organization_id)
                .one(db)
                .await?
        else {
            continue;
        };
        let time_zone = organization
            .time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::UTC);
        let local_today = now.with_timezone(&time_zone).date_naive();
        let days_left = (expires_on - local_today).num_days();
        let Some(threshold) = REMINDERS
            .iter()
            .rev()
            .copied()
            .find(|days| (0..=*days).contains(&days_left))
        else {
            continue;
        };
        let Some(holder) = unscoped::find_by_id::<entity::user::Entity>(certification.user_id)
            .one(db)
            .await?
            .filter(|u| u.status == "ACTIVE")
        else {
            continue;
        };
        let requiring: Vec<String> = unscoped::find::<entity::role::Entity>()
            .join(JoinType::InnerJoin, entity::role::Relation::UserRoles.def())
            .filter(entity::user_role::Column::UserId.eq(holder.id))
            .filter(entity::role::Column::RequiredCertifications.is_not_null())
            .all(db)
            .await?
            .into_iter()
            .filter(|role| {
                role.required_certifications()
                    .iter()
                    .any(|n| normalized(n) == normalized(&certification.name))
            })
            .map(|role| role.name)
            .collect();
        if requiring.is_empty() {
            continue;
        }
        let txn = crate::db::begin_write(db).await?;
        // Once per certification and threshold, whichever instance wins.
        let won = entity::certification_reminder::Entity::insert(
            entity::certification_reminder::ActiveModel {
                certification_id: sea_orm::ActiveValue::Set(certification.id),
                days_before: sea_orm::ActiveValue::Set(i32::try_from(threshold).unwrap_or(0)),
                sent_at: sea_orm::ActiveValue::Set(now),
            },
        )
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                entity::certification_reminder::Column::CertificationId,
                entity::certification_reminder::Column::DaysBefore,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?
            == 1;
        if !won {
            continue;
        }
        let mut recipients = vec![holder.clone()];
        recipients.extend(
            super::holders::active(
                &txn,
                holder.organization_id,
                crate::auth::Permission::UsersWrite,
                Some(holder.id),
            )
            .await?,
        );
        let lapses = lapse(expires_on, time_zone).with_timezone(&time_zone);
        for recipient in &recipients {
            let Ok(to) = crate::domain::Email::parse(&recipient.email, "email") else {
                continue;
            };
            let whose = if recipient.id == holder.id {
                "Your".to_owned()
            } else {
                format!("{} {}'s", holder.first_name, holder.last_name)
            };
            super::outbox::enqueue_email(
                &txn,
                super::outbox::NewEmail {
                    organization_id: Some(holder.organization_id),
                    kind: "certification.expiring",
                    to: &to,
                    subject: format!(
                        "{whose} {} expires in {days_left} day{}",
                        certification.name,
                        if days_left == 1 { "" } else { "s" }
                    ),
                    body: format!(
                        "{whose} certification \"{name}\" expires on {expires_on} (at {lapses}). \
                         Without a valid one, these roles are suspended from then: {roles}.\n\n\
                         Record the renewed certification in Rollcall before then (an administrator \
                         records certifications that roles require).\n",
                        name = certification.name,
                        lapses = lapses.format("%Y-%m-%d %H:%M %Z"),
                        roles = requiring.join(", "),
                    ),
                },
            )
            .await?;
            sent += 1;
        }
        txn.commit().await?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certification(name: &str, expires_on: Option<&str>) -> entity::certification::Model {
        entity::certification::Model {
            id: Uuid::now_v7(),
            organization_id: Uuid::nil(),
            user_id: Uuid::nil(),
            name: name.to_owned(),
            issuing_body: None,
            number: None,
            issued_on: None,
            expires_on: expires_on.and_then(|d| d.parse().ok()),
            created_at: Utc::now(),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_default()
    }

    #[test]
    fn a_certification_is_valid_through_its_last_day_in_the_organisations_zone() {
        let chicago: chrono_tz::Tz = "America/Chicago".parse().unwrap_or(chrono_tz::UTC);
        let day: NaiveDate = "2026-12-31".parse().unwrap_or_default();
        assert_eq!(lapse(day, chicago), at("2027-01-01T06:00:00Z"));
        assert_eq!(lapse(day, chrono_tz::UTC), at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn a_role_is_suspended_without_a_valid_certification_of_each_name() {
        let nurse = Uuid::from_u128(1);
        let charge = Uuid::from_u128(2);
        let requiring = vec![
            (nurse, vec!["State licence".to_owned()]),
            (charge, vec!["state LICENCE".to_owned(), "BLS".to_owned()]),
        ];
        let held = vec![
            certification(" State Licence ", Some("2026-12-31")),
            certification("BLS", Some("2026-11-30")),
        ];
        let before = judge(
            &requiring,
            &held,
            chrono_tz::UTC,
            at("2026-11-30T23:59:59Z"),
        );
        assert!(before.suspended.is_empty());
        assert_eq!(before.next_change, Some(at("2026-12-01T00:00:00Z")));
        let after = judge(
            &requiring,
            &held,
            chrono_tz::UTC,
            at("2026-12-01T00:00:00Z"),
        );
        assert_eq!(after.suspended, BTreeSet::from([charge]));
        assert_eq!(after.next_change, Some(at("2027-01-01T00:00:00Z")));
        // A second licence without an end keeps the role for good.
        let mut renewed = held.clone();
        renewed.push(certification("State licence", None));
        let standing = judge(
            &requiring,
            &renewed,
            chrono_tz::UTC,
            at("2027-06-01T00:00:00Z"),
        );
        assert_eq!(standing.suspended, BTreeSet::from([charge]));
        assert_eq!(standing.next_change, None);
    }
}
