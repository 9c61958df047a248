//! Access reviews: who still needs the roles they hold, attested by
//! reviewers by a due date.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, dataloader::DataLoader};
use chrono::{DateTime, Utc};

use super::loaders::Key;
use super::{
    Ctx,
    audit::user_in_trail,
    connection::{Conn, into_connection, page_request, parse_id},
    people::{Role, User},
};
use crate::services::access_reviews::{self, Decision, NewReview, OnDue};

/// What happens at the due date to users no reviewer attested.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AccessReviewOnDue")]
pub enum AccessReviewOnDue {
    /// Their roles under review are revoked.
    Revoke,
    /// Their roles are kept, and the outcome marks them timed out.
    Keep,
}

/// A reviewer's decision.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AccessDecision")]
pub enum AccessDecision {
    Keep,
    Revoke,
}

/// A review to start: users by id, or the holders of roles (or both), each
/// reviewed for the roles named (for holders) or all their roles (for users
/// named).
#[derive(InputObject)]
pub struct AccessReviewInput {
    name: String,
    #[graphql(default)]
    user_ids: Vec<ID>,
    #[graphql(default)]
    role_ids: Vec<ID>,
    reviewer_ids: Vec<ID>,
    due_at: DateTime<Utc>,
    on_due: AccessReviewOnDue,
}

/// A review of who holds which roles.
pub struct AccessReview(entity::access_review::Model);

#[Object]
impl AccessReview {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.created_by {
            Some(id) => user_in_trail(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn reviewers(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let mut users = Vec::new();
        for id in self.0.reviewers() {
            users.extend(user_in_trail(ctx, id).await?);
        }
        Ok(users)
    }
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    async fn on_due(&self) -> AccessReviewOnDue {
        if self.0.on_due == "REVOKE" {
            AccessReviewOnDue::Revoke
        } else {
            AccessReviewOnDue::Keep
        }
    }
    /// When it closed: at its due date.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    /// The users under review, with what became of each.
    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<AccessReviewItem>> {
        let items = ctx
            .data::<DataLoader<super::loaders::ItemsOfReview>>()?
            .load_one(Key::within(self.0.organization_id, self.0.id))
            .await
            .map_err(super::loaders::loader_error)?;
        Ok(items
            .unwrap_or_default()
            .into_iter()
            .map(AccessReviewItem)
            .collect())
    }
    /// The outcome as CSV (a download; the same rules as the review).
    async fn csv_path(&self) -> String {
        format!("/exports/access-reviews/{}.csv", self.0.id)
    }
}

/// One user under review.
pub struct AccessReviewItem(entity::access_review_item::Model);

#[Object]
impl AccessReviewItem {
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_in_trail(ctx, self.0.user_id).await
    }
    /// The roles under review.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        roles_named(ctx, &self.0.role_ids).await
    }
    /// KEEP or REVOKE; null while undecided.
    async fn decision(&self) -> Option<AccessDecision> {
        match self.0.decision.as_deref() {
            Some("KEEP") => Some(AccessDecision::Keep),
            Some("REVOKE") => Some(AccessDecision::Revoke),
            _ => None,
        }
    }
    /// Decided by the due date rather than by a reviewer.
    async fn timed_out(&self) -> bool {
        self.0.timed_out
    }
    async fn decided_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.decided_by {
            Some(id) => user_in_trail(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// The roles a revocation took away.
    async fn revoked_roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        match &self.0.revoked_role_ids {
            Some(ids) => roles_named(ctx, ids).await,
            None => Ok(Vec::new()),
        }
    }
}

/// The organisation's roles of `ids`, in their order.
async fn roles_named(ctx: &Context<'_>, ids: &serde_json::Value) -> Result<Vec<Role>> {
    let actor = ctx.caller()?.actor()?;
    let ids = entity::access_review::uuids(ids);
    let mut found = ctx
        .data::<DataLoader<super::loaders::ById<entity::role::Entity>>>()?
        .load_many(ids.iter().map(|id| Key::new(actor.tenant(), *id)))
        .await
        .map_err(super::loaders::loader_error)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.remove(&Key::new(actor.tenant(), *id)))
        .map(Role::from)
        .collect())
}

#[derive(Default)]
pub struct AccessReviewQuery;

#[Object]
impl AccessReviewQuery {
    /// Access reviews, newest first: every one for those who manage roles or
    /// read the audit trail, the ones they review for anyone else.
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn access_reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<AccessReview>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let page = access_reviews::list(&state.db, actor, page).await?;
        Ok(into_connection(page, |r| r.id, AccessReview))
    }
}

#[derive(Default)]
pub struct AccessReviewMutation;

#[Object]
impl AccessReviewMutation {
    /// Start an access review (ROLES_MANAGE): its reviewers are emailed.
    /// Only users and roles you could change yourself may be under review.
    async fn start_access_review(
        &self,
        ctx: &Context<'_>,
        input: AccessReviewInput,
    ) -> Result<AccessReview> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let ids = |ids: &[ID], field: &str| -> Result<Vec<uuid::Uuid>> {
            ids.iter()
                .map(|id| parse_id(id, field).map_err(Into::into))
                .collect()
        };
        let new = NewReview {
            name: input.name,
            user_ids: ids(&input.user_ids, "userIds")?,
            role_ids: ids(&input.role_ids, "roleIds")?,
            reviewer_ids: ids(&input.reviewer_ids, "reviewerIds")?,
            due_at: input.due_at,
            on_due: match input.on_due {
                AccessReviewOnDue::Revoke => OnDue::Revoke,
                AccessReviewOnDue::Keep => OnDue::Keep,
            },
        };
        Ok(AccessReview(
            access_reviews::start(&state.db, actor, new).await?,
        ))
    }

    /// Attest one user's access as a reviewer: KEEP, or REVOKE to take the
    /// roles under review away at once. Not your own.
    async fn attest_access(
        &self,
        ctx: &Context<'_>,
        review_id: ID,
        user_id: ID,
        decision: AccessDecision,
        note: Option<String>,
    ) -> Result<AccessReviewItem> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let decision = match decision {
            AccessDecision::Keep => Decision::Keep,
            AccessDecision::Revoke => Decision::Revoke,
        };
        Ok(AccessReviewItem(
            access_reviews::attest(
                &state.db,
                state.auth.store().as_ref(),
                actor,
                parse_id(&review_id, "reviewId")?,
                parse_id(&user_id, "userId")?,
                decision,
                note.as_deref(),
            )
            .await?,
        ))
    }
}
