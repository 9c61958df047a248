//! Logging in and out, passwords, and sessions: one's own and (SESSIONS_MANAGE)
//! anyone's in the organisation; `sessionEvents` tells a client its session ended.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream};
use poem::http::header::SET_COOKIE;

use super::{Ctx, connection::parse_id, people::User};
use crate::{
    auth::cookies,
    auth::session::{EndReason, SessionId, SessionRecord, methods_names, wait_for_end},
    services::{auth::LoggedIn, sessions, users},
};

/// A login session.
pub struct Session {
    record: SessionRecord,
    current: bool,
}

#[Object]
impl Session {
    /// The session's public id (a digest of its token, which it never reveals).
    async fn id(&self) -> ID {
        ID(self.record.id.0.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.record.created_at
    }
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.record.last_seen_at
    }
    /// When the session ends unless it is used again: the inactivity timeout from
    /// the last request, or the absolute maximum, whichever comes first.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.record.expires_at()
    }
    /// When the session ends whatever the activity.
    async fn absolute_expires_at(&self) -> DateTime<Utc> {
        self.record.absolute_expiry
    }
    async fn ip_address(&self) -> Option<&str> {
        self.record.ip_address.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.record.user_agent.as_deref()
    }
    /// Whether this is the session making the request.
    async fn current(&self) -> bool {
        self.current
    }
    /// How the session was made and verified (RFC 8176 names): `pwd`, `otp`,
    /// `hwk`, `sso`, and `mfa` when the identity provider verified a second
    /// factor.
    async fn auth_methods(&self) -> Vec<&'static str> {
        methods_names(&self.record.auth_methods)
    }
    /// A login still waiting for its second factor.
    async fn mfa_pending(&self) -> bool {
        self.record.mfa_pending
    }
}

/// A successful login. Browsers also receive the `rollcall_session` cookie.
#[derive(SimpleObject)]
pub struct LoginPayload {
    /// The bearer token for `Authorization: Bearer`; shown once.
    token: String,
    expires_at: DateTime<Utc>,
    user: User,
    /// When true, only `me`, `changePassword` and `logout` are allowed until the
    /// password is changed.
    must_change_password: bool,
    /// When true, the password was right but the login waits for its second
    /// factor: for five minutes this session can do nothing but `verifyMfa`
    /// (or `logout`); anything else answers MFA_REQUIRED.
    mfa_required: bool,
    /// What may complete a pending login: `TOTP`, `RECOVERY_CODE`, `WEBAUTHN`.
    mfa_methods: Vec<&'static str>,
    /// When true, the organisation requires a second factor and the user has
    /// none: only `me`, enrolment and `logout` are allowed until one is
    /// enrolled (anything else answers MFA_ENROLLMENT_REQUIRED).
    mfa_enrollment_required: bool,
}

/// Redeem a one-time link (invite or reset): the new session's payload.
pub async fn set_password_with_link(
    ctx: &Context<'_>,
    token: &str,
    password: &str,
) -> Result<LoginPayload> {
    let state = ctx.state()?;
    let logged_in = state
        .auth
        .set_password_with_link(token, password, ctx.caller()?.origin.clone())
        .await?;
    LoginPayload::setting_cookie(ctx, logged_in)
}

impl LoginPayload {
    /// The payload of a new session, whose cookie the response sets as well.
    pub fn setting_cookie(ctx: &Context<'_>, logged_in: LoggedIn) -> Result<Self> {
        let state = ctx.state()?;
        ctx.append_http_header(
            SET_COOKIE,
            cookies::session_cookie(logged_in.token.expose(), state.config.secure_cookies),
        );
        Ok(Self {
            token: logged_in.token.expose().to_owned(),
            expires_at: logged_in.session.expires_at(),
            must_change_password: logged_in.user.must_change_password,
            mfa_required: logged_in.session.mfa_pending,
            mfa_methods: logged_in.mfa_methods,
            mfa_enrollment_required: logged_in.must_enroll_mfa,
            user: User::from(logged_in.user),
        })
    }
}

/// Why a session ended.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SessionEventKind {
    Revoked,
    Expired,
}

/// The end of the subscriber's own session; the socket closes right after.
#[derive(SimpleObject)]
pub struct SessionEvent {
    kind: SessionEventKind,
    session_id: ID,
}

fn sessions_of(records: Vec<SessionRecord>, current: Option<&SessionId>) -> Vec<Session> {
    records
        .into_iter()
        .map(|record| Session {
            current: Some(&record.id) == current,
            record,
        })
        .collect()
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The caller's live sessions, newest first.
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let actor = ctx.caller()?.actor()?;
        let store = ctx.state()?.auth.store();
        let records = sessions::my_sessions(store.as_ref(), actor).await?;
        Ok(sessions_of(records, actor.session().ok()))
    }

    /// A user's live sessions (SESSIONS_MANAGE).
    async fn user_sessions(&self, ctx: &Context<'_>, user_id: ID) -> Result<Vec<Session>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let user_id = parse_id(&user_id, "userId")?;
        let records =
            sessions::user_sessions(&state.db, state.auth.store().as_ref(), actor, user_id).await?;
        Ok(sessions_of(records, actor.session().ok()))
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Log in; sets the session cookie and returns the bearer token. After 10
    /// failures for one email (or 100 from one address) within 15 minutes, answers
    /// RATE_LIMITED for 15 minutes.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<LoginPayload> {
        let state = ctx.state()?;
        let caller = ctx.caller()?;
        let logged_in = state
            .auth
            .login(&email, &password, caller.origin.clone())
            .await?;
        LoginPayload::setting_cookie(ctx, logged_in)
    }

    /// Ask for a link to choose a new password, sent to the account's own address
    /// and valid for an hour. Always true, whether or not an account has that
    /// address, so that nobody can learn who has one; RATE_LIMITED after 5 requests
    /// for one email (or 30 from one address) within 15 minutes.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let state = ctx.state()?;
        let caller = ctx.caller()?;
        state
            .auth
            .request_password_reset(&email, caller.origin.clone(), &state.public_url)
            .await?;
        Ok(true)
    }

    /// Choose a new password with a reset link's token: every session of the user
    /// ends, a lockout of their email is lifted, and they are logged in (sets the
    /// cookie). An invite link's token works here as it does in `acceptInvite`.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> Result<LoginPayload> {
        set_password_with_link(ctx, &token, &password).await
    }

    /// End the current session and clear the cookie.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.any_session()?;
        state.auth.logout(actor).await?;
        ctx.append_http_header(
            SET_COOKIE,
            cookies::clear_session_cookie(state.config.secure_cookies),
        );
        Ok(true)
    }

    /// Change one's password. Every other session of the user ends; this one stays.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        state
            .auth
            .change_password(actor, &current_password, &new_password)
            .await?;
        Ok(true)
    }

    /// End one session: one's own, or any of the organisation with SESSIONS_MANAGE.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = SessionId(id.0);
        sessions::revoke_session(&state.db, state.auth.store().as_ref(), actor, &id).await?;
        Ok(true)
    }

    /// End every session of a user; how many were ended.
    async fn revoke_user_sessions(&self, ctx: &Context<'_>, user_id: ID) -> Result<u64> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let user_id = parse_id(&user_id, "userId")?;
        Ok(
            sessions::revoke_user_sessions(&state.db, state.auth.store().as_ref(), actor, user_id)
                .await?,
        )
    }
}

#[derive(Default)]
pub struct SessionSubscription;

#[Subscription]
impl SessionSubscription {
    /// One value when the subscriber's own session is revoked (on any instance) or
    /// expires; then the socket closes.
    async fn session_events(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = SessionEvent>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        // The user must still exist: a subscription is no way around deactivation.
        users::find(&state.db, actor, actor.user_id)
            .await?
            .ok_or(crate::error::AppError::Unauthenticated)?;
        let store = state.auth.store().clone();
        let id = actor.session()?.clone();
        Ok(stream::once(async move {
            let reason = wait_for_end(store, id.clone()).await;
            SessionEvent {
                kind: match reason {
                    EndReason::Revoked => SessionEventKind::Revoked,
                    EndReason::Expired => SessionEventKind::Expired,
                },
                session_id: ID(id.0),
            }
        })
        .boxed())
    }
}
