//! Second factors: enrolling a TOTP app, completing a login or stepping up
//! with a code, recovery codes, and an administrator's reset.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};

use super::{
    Ctx,
    connection::parse_id,
    people::{Authenticator, User},
    session::LoginPayload,
};
use crate::services::mfa;

/// What an authenticator app needs: scan the QR code, or type the secret.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// Base32, for typing into the app by hand.
    secret: String,
    /// The `otpauth://totp/…` URI the QR code holds.
    otpauth_uri: String,
    /// The URI as a QR code, an SVG image.
    qr_code_svg: String,
}

#[derive(Default)]
pub struct MfaQuery;

#[Object]
impl MfaQuery {
    /// The caller's second factors.
    async fn my_authenticators(&self, ctx: &Context<'_>) -> Result<Vec<Authenticator>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        let mut mine = mfa::authenticators_of(&state.db, actor.home(), &[actor.user_id]).await?;
        Ok(mine
            .remove(&actor.user_id)
            .unwrap_or_default()
            .into_iter()
            .map(Authenticator)
            .collect())
    }
}

#[derive(Default)]
pub struct MfaMutation;

#[Object]
impl MfaMutation {
    /// Begin enrolling an authenticator app: scan the QR code (or type the
    /// secret), then `confirmTotpEnrollment` with its first code. Allowed while
    /// the organisation makes the caller enrol before anything else.
    async fn start_totp_enrollment(&self, ctx: &Context<'_>) -> Result<TotpEnrollment> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        let enrollment = state.auth.start_totp_enrollment(actor).await?;
        Ok(TotpEnrollment {
            secret: enrollment.secret,
            otpauth_uri: enrollment.otpauth_uri,
            qr_code_svg: enrollment.qr_code_svg,
        })
    }

    /// Turn the app on with its first code; answers ten recovery codes, shown
    /// this once and each good once. Wrong codes count toward the lockout.
    async fn confirm_totp_enrollment(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<Vec<String>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        Ok(state.auth.confirm_totp_enrollment(actor, &code).await?)
    }

    /// A code from the authenticator app, or a recovery code. On a login
    /// waiting for its second factor it completes the login: a new session
    /// (new token and cookie) replaces the pending one. On a complete session
    /// it verifies the second factor again, for sensitive operations in the
    /// next 15 minutes. Wrong codes count toward the lockout like wrong
    /// passwords; a code is accepted once.
    async fn verify_mfa(&self, ctx: &Context<'_>, code: String) -> Result<LoginPayload> {
        let state = ctx.state()?;
        let caller = ctx.caller()?;
        let actor = caller.any_session()?;
        let logged_in = state
            .auth
            .verify_mfa(actor, caller.token.as_ref(), &code)
            .await?;
        LoginPayload::setting_cookie(ctx, logged_in)
    }

    /// Begin registering a passkey or security key: the options
    /// (PublicKeyCredentialCreationOptions) for `navigator.credentials.create`.
    /// A user may register several; allowed while the organisation makes the
    /// caller enrol before anything else.
    async fn start_web_authn_registration(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Json<serde_json::Value>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        Ok(Json(state.auth.start_passkey_registration(actor).await?))
    }

    /// Finish registering with the device's answer, under a name the user
    /// will recognise ("Work laptop", "YubiKey").
    async fn finish_web_authn_registration(
        &self,
        ctx: &Context<'_>,
        name: String,
        credential: Json<serde_json::Value>,
    ) -> Result<Authenticator> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        Ok(Authenticator(
            state
                .auth
                .finish_passkey_registration(actor, &name, credential.0)
                .await?,
        ))
    }

    /// Begin a login with a passkey: the options
    /// (PublicKeyCredentialRequestOptions) for `navigator.credentials.get`. On
    /// a session (a pending login, or a step-up) for the caller's own
    /// passkeys; else for the account of `email` (an address without one is
    /// answered alike); without an email, for whichever passkey of this site
    /// the device holds.
    async fn start_web_authn_login(
        &self,
        ctx: &Context<'_>,
        email: Option<String>,
    ) -> Result<Json<serde_json::Value>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor.as_ref();
        Ok(Json(
            state
                .auth
                .start_passkey_login(actor, email.as_deref())
                .await?,
        ))
    }

    /// Finish a passkey login with the device's answer: completes a pending
    /// login (new token), verifies again on a complete session (same token),
    /// or logs in without a password. Refused answers count toward the
    /// lockout.
    async fn finish_web_authn_login(
        &self,
        ctx: &Context<'_>,
        credential: Json<serde_json::Value>,
    ) -> Result<LoginPayload> {
        let state = ctx.state()?;
        let caller = ctx.caller()?;
        let logged_in = state
            .auth
            .finish_passkey_login(
                caller.actor.as_ref(),
                caller.token.as_ref(),
                credential.0,
                caller.origin.clone(),
            )
            .await?;
        LoginPayload::setting_cookie(ctx, logged_in)
    }

    /// Remove one of the caller's second factors (needs a recent second
    /// factor). Removing the last removes the recovery codes too.
    async fn remove_authenticator(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        state.auth.remove_authenticator(actor, id).await?;
        Ok(true)
    }

    /// Ten new recovery codes in place of the old ones (needs a recent second factor).
    async fn regenerate_recovery_codes(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(state.auth.regenerate_recovery_codes(actor).await?)
    }

    /// Remove every second factor of a user and end their sessions
    /// (USERS_WRITE, for users whose permissions the caller holds; needs a
    /// recent second factor when the caller has one). Audited.
    async fn reset_user_mfa(&self, ctx: &Context<'_>, user_id: ID) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let user_id = parse_id(&user_id, "userId")?;
        Ok(User::from(state.auth.reset_user_mfa(actor, user_id).await?))
    }
}
