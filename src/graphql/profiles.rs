//! Self-service profiles, certifications and availability as clients read and
//! change them.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    connection::parse_id,
    people::{Certification, Date, DayOfWeek, User},
    staff::clearable,
};
use crate::{
    domain::{Locale, Phone, text},
    error::{AppError, Validation},
    services::profiles::{self, ProfileChanges, Slot},
};

#[derive(InputObject)]
pub struct CertificationInput {
    pub name: String,
    pub issuing_body: Option<String>,
    pub number: Option<String>,
    pub issued_on: Option<Date>,
    pub expires_on: Option<Date>,
}

/// A weekly slot; `start` and `end` are `HH:MM` local time, `end` exclusive.
#[derive(InputObject)]
pub struct AvailabilityInput {
    pub day_of_week: DayOfWeek,
    pub start: String,
    pub end: String,
    pub location_id: Option<ID>,
}

/// Changes to a profile: omitted fields stay as they are, `null` clears an
/// optional one; `certifications` and `availability`, when given, replace the
/// whole list.
#[derive(InputObject, Default)]
pub struct ProfileInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: MaybeUndefined<String>,
    /// Stored in E.164.
    pub mobile_phone: MaybeUndefined<String>,
    /// BCP 47, e.g. `en-US`.
    pub locale: MaybeUndefined<String>,
    pub email_signature: MaybeUndefined<String>,
    /// A JSON object of at most 16 KiB: the front-ends' settings for this user.
    pub preferences: MaybeUndefined<async_graphql::Json<serde_json::Value>>,
    pub certifications: Option<Vec<CertificationInput>>,
    pub availability: Option<Vec<AvailabilityInput>>,
}

impl ProfileInput {
    fn parse(self) -> Result<ProfileChanges, AppError> {
        let mut v = Validation::default();
        let first_name = self
            .first_name
            .and_then(|n| v.check(text::required(&n, "firstName", 100)));
        let last_name = self
            .last_name
            .and_then(|n| v.check(text::required(&n, "lastName", 100)));
        let title = clearable(&mut v, self.title, |t| text::required(t, "title", 100));
        let mobile_phone = clearable(&mut v, self.mobile_phone, |p| {
            Phone::parse(p, "mobilePhone")
        });
        let locale = clearable(&mut v, self.locale, |l| Locale::parse(l, "locale"));
        let email_signature = match self.email_signature {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(s) if s.trim().is_empty() => Some(None),
            MaybeUndefined::Value(s) if s.chars().count() > 2000 => {
                v.add("emailSignature", "must be at most 2000 characters long");
                None
            }
            MaybeUndefined::Value(s) => Some(Some(s.trim().to_owned())),
        };
        let preferences = match self.preferences {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(json) => v
                .check(profiles::parse_preferences(json.0, "preferences"))
                .map(Some),
        };
        let certifications = self.certifications.map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    profiles::parse_certification(
                        &mut v,
                        i,
                        &c.name,
                        c.issuing_body.as_deref(),
                        c.number.as_deref(),
                        c.issued_on.map(|d| d.0),
                        c.expires_on.map(|d| d.0),
                    )
                })
                .collect::<Vec<_>>()
        });
        let availability = self.availability.map(|list| {
            let slots: Vec<Slot> = list
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let start = v.check(profiles::parse_time(
                        &a.start,
                        &format!("availability[{i}].start"),
                    ));
                    let end = v.check(profiles::parse_time(
                        &a.end,
                        &format!("availability[{i}].end"),
                    ));
                    let location_id = match &a.location_id {
                        Some(id) => {
                            Some(v.check(parse_id(id, &format!("availability[{i}].locationId")))?)
                        }
                        None => None,
                    };
                    Some(Slot {
                        day_of_week: a.day_of_week.iso(),
                        start_minute: start?,
                        end_minute: end?,
                        location_id,
                    })
                })
                .collect();
            if slots.len() == list.len() {
                profiles::check_slots(&slots, &mut v);
            }
            slots
        });
        v.finish()?;
        Ok(ProfileChanges {
            first_name,
            last_name,
            title,
            mobile_phone,
            locale,
            email_signature,
            preferences,
            certifications,
            availability,
        })
    }
}

#[derive(Default)]
pub struct ProfileQuery;

#[Object]
impl ProfileQuery {
    /// The organisation's certifications that expire within `withinDays` days,
    /// expired ones first (USERS_READ).
    async fn expiring_certifications(
        &self,
        ctx: &Context<'_>,
        within_days: i32,
    ) -> Result<Vec<Certification>> {
        let actor = ctx.caller()?.actor()?;
        Ok(
            profiles::expiring_certifications(&ctx.state()?.db, actor, within_days)
                .await?
                .into_iter()
                .map(Certification)
                .collect(),
        )
    }

    /// Active staff scheduled at `at` (at a location, when given), by their
    /// weekly availability in the organisation's time zone (USERS_READ).
    async fn available_staff(
        &self,
        ctx: &Context<'_>,
        at: DateTime<Utc>,
        location_id: Option<ID>,
    ) -> Result<Vec<User>> {
        let actor = ctx.caller()?.actor()?;
        let location_id = location_id
            .map(|id| parse_id(&id, "locationId"))
            .transpose()?;
        Ok(
            profiles::available_staff(&ctx.state()?.db, actor, at, location_id)
                .await?
                .into_iter()
                .map(User::from)
                .collect(),
        )
    }
}

#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    /// Change one's own profile, certifications and availability. Email,
    /// roles, status and the inactivity timeout stay with admins.
    async fn update_my_profile(&self, ctx: &Context<'_>, input: ProfileInput) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let changes = input.parse()?;
        Ok(User::from(
            profiles::update(
                &state.db,
                state.auth.store().as_ref(),
                actor,
                actor.user_id,
                changes,
            )
            .await?,
        ))
    }

    /// Change a staff user's profile, certifications and availability
    /// (USERS_WRITE).
    async fn update_user_profile(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        input: ProfileInput,
    ) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let user_id = parse_id(&user_id, "userId")?;
        let changes = input.parse()?;
        Ok(User::from(
            profiles::update(
                &state.db,
                state.auth.store().as_ref(),
                actor,
                user_id,
                changes,
            )
            .await?,
        ))
    }
}
