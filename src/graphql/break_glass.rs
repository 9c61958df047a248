//! Emergency access ("break glass"): asked for by the one who needs it,
//! reviewed afterwards by an auditor.

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    audit::user_in_trail,
    connection::{Conn, into_connection, page_request, parse_id},
    people::User,
};
use crate::services::break_glass::{self, Request};

/// Emergency access a user gave themselves, with its reason and its review.
pub struct BreakGlassGrant(entity::break_glass_grant::Model);

#[Object]
impl BreakGlassGrant {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Who asked for it.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_in_trail(ctx, self.0.user_id).await
    }
    /// The one patient it covers; null when it covers every patient. Only
    /// the id: a reviewer need not see the patient's record to review.
    async fn patient_id(&self) -> Option<ID> {
        self.0.patient_id.map(|id| ID(id.to_string()))
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    /// When it ends by itself.
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
    /// When its holder ended it sooner.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// Whether it is in force now.
    async fn active(&self) -> bool {
        let now = Utc::now();
        self.0.starts_at <= now && now < self.0.stops_at()
    }
    async fn reviewed_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.reviewed_by {
            Some(id) => user_in_trail(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviewed_at
    }
    async fn review_note(&self) -> Option<&str> {
        self.0.review_note.as_deref()
    }
}

#[derive(Default)]
pub struct BreakGlassQuery;

#[Object]
impl BreakGlassQuery {
    /// Emergency access granted in the organisation, newest first: every
    /// grant for a reviewer (AUDIT_READ), one's own for anyone else.
    /// `pendingReview: true` is the reviewers' queue.
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn break_glass_grants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        pending_review: Option<bool>,
    ) -> Result<Conn<BreakGlassGrant>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let page = break_glass::list(&state.db, actor, pending_review, page).await?;
        Ok(into_connection(page, |g| g.id, BreakGlassGrant))
    }
}

#[derive(Default)]
pub struct BreakGlassMutation;

#[Object]
impl BreakGlassMutation {
    /// In an emergency, see one patient outside your care team (`patientId`)
    /// or every patient, for `minutes` (at most, and by default, the
    /// organisation's limit), giving a reason of at least 15 characters
    /// (BREAK_GLASS). The organisation's reviewers are told at once, and
    /// everything you do under it is marked in the audit trail.
    async fn break_glass(
        &self,
        ctx: &Context<'_>,
        reason: String,
        patient_id: Option<ID>,
        minutes: Option<i32>,
    ) -> Result<BreakGlassGrant> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let request = Request {
            reason,
            patient_id: patient_id
                .as_ref()
                .map(|id| parse_id(id, "patientId"))
                .transpose()?,
            minutes,
            minute: std::time::Duration::from_secs(state.config.break_glass_minute_seconds.max(1)),
        };
        Ok(BreakGlassGrant(
            break_glass::start(
                &state.db,
                state.auth.store().as_ref(),
                actor,
                request,
                &state.public_url,
            )
            .await?,
        ))
    }

    /// End your emergency access now; whether you held any.
    async fn end_break_glass(&self, ctx: &Context<'_>) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(break_glass::end(&state.db, state.auth.store().as_ref(), actor).await?)
    }

    /// Record the review of an emergency access (AUDIT_READ; not one's own).
    async fn review_break_glass(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: String,
    ) -> Result<BreakGlassGrant> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(BreakGlassGrant(
            break_glass::review(&state.db, actor, parse_id(&id, "id")?, &note).await?,
        ))
    }
}
