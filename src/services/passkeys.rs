//! Passkeys and security keys (WebAuthn, through webauthn-rs): registering
//! several per user, each with a name; logging in with one, by email or as a
//! passkey that names its user; and using one as the second factor of a
//! password login or a step-up.
//!
//! - The relying party id and the accepted origins come from configuration
//!   (`ROLLCALL_WEBAUTHN_RP_ID`, `ROLLCALL_WEBAUTHN_ORIGINS`, by default the
//!   public URL's host and origin).
//! - Every ceremony's server half is kept in the database under its challenge
//!   for five minutes and taken once, so any instance finishes what another
//!   started and no answer is accepted twice.
//! - User verification (a PIN or biometric on the device) is required, so a
//!   passkey alone is two factors: a passwordless login counts as verified
//!   with a second factor.
//! - The signature counter is checked: an assertion whose counter does not
//!   exceed the stored one (a cloned key) is refused.
//! - Asking to log in by an email that has no passkey answers like one that
//!   has: options naming credentials derived from the email under the
//!   server's key (webauthn-rs's generator, shaped like real ones), which no
//!   device holds, so the answer says nothing of who has an account.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter, sea_query::Expr,
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;
use webauthn_rs::{
    fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator},
    prelude::{
        DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
        PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
    },
};

use super::{
    audit::{self, AuditEntry},
    auth::{Authenticator, EMAIL_FAILURE_LIMIT, LoggedIn, email_key},
};
use crate::db::{global, unscoped};
use crate::{
    auth::{Actor, actor::Origin, session::AuthMethod},
    domain::{Email, text},
    error::{AppError, AppResult},
    telemetry::events,
};

/// How long a ceremony waits for its answer.
const CEREMONY_MINUTES: i64 = 5;

/// The relying party: who passkeys are made for.
pub struct Passkeys {
    webauthn: Result<Webauthn, String>,
}

impl Passkeys {
    /// The relying party `rp_id`, accepting answers from `origins`. A
    /// configuration webauthn-rs refuses (an IP address for an id, an origin
    /// outside it) leaves passkeys off, and every ceremony says why.
    pub fn new(rp_id: &str, origins: &[Url]) -> Self {
        let webauthn = match origins.split_first() {
            None => Err("no origin is configured".to_owned()),
            Some((first, rest)) => WebauthnBuilder::new(rp_id, first)
                .map(|builder| {
                    rest.iter().fold(builder.rp_name("Rollcall"), |b, origin| {
                        b.append_allowed_origin(origin)
                    })
                })
                .and_then(WebauthnBuilder::build)
                .map_err(|e| format!("relying party {rp_id:?} with origin {first}: {e}")),
        };
        if let Err(why) = &webauthn {
            tracing::warn!(%why, "passkeys are off: set ROLLCALL_WEBAUTHN_RP_ID and ROLLCALL_WEBAUTHN_ORIGINS");
        }
        Self { webauthn }
    }

    fn get(&self) -> AppResult<&Webauthn> {
        self.webauthn.as_ref().map_err(|why| {
            AppError::Conflict(format!("Passkeys are not available on this server: {why}."))
        })
    }
}

/// A refused WebAuthn answer: the field and what webauthn-rs found.
fn refused(field: &str, err: impl std::fmt::Display) -> AppError {
    AppError::bad_input(field, format!("was not accepted: {err}"))
}

fn parse<T: DeserializeOwned>(value: serde_json::Value, field: &str) -> AppResult<T> {
    serde_json::from_value(value)
        .map_err(|e| AppError::bad_input(field, format!("is not a WebAuthn credential: {e}")))
}

fn to_json(value: &impl Serialize) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(e.into()))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The challenge an answer's client data names.
fn challenge_of(client_data_json: &[u8], field: &str) -> AppResult<String> {
    #[derive(serde::Deserialize)]
    struct ClientData {
        challenge: String,
    }
    serde_json::from_slice::<ClientData>(client_data_json)
        .map(|c| c.challenge)
        .map_err(|_| AppError::bad_input(field, "holds no readable client data"))
}

/// A user's passkeys with their rows.
async fn passkeys_of(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> AppResult<Vec<(entity::authenticator::Model, Passkey)>> {
    let rows = unscoped::find::<entity::authenticator::Entity>()
        .filter(entity::authenticator::Column::UserId.eq(user_id))
        .filter(entity::authenticator::Column::Kind.eq("WEBAUTHN"))
        .filter(entity::authenticator::Column::ConfirmedAt.is_not_null())
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let passkey = row
                .credential
                .as_deref()
                .and_then(|c| serde_json::from_str::<Passkey>(c).ok())
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("unreadable passkey {}", row.id))
                })?;
            Ok((row, passkey))
        })
        .collect()
}

impl Authenticator {
    /// Keep a ceremony's server half under its challenge.
    async fn keep_ceremony(
        &self,
        challenge: &[u8],
        purpose: &str,
        user_id: Option<Uuid>,
        state: &impl Serialize,
    ) -> AppResult<()> {
        let now = Utc::now();
        global::delete_many::<entity::webauthn_ceremony::Entity>()
            .filter(entity::webauthn_ceremony::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        entity::webauthn_ceremony::ActiveModel {
            id: Set(Uuid::now_v7()),
            challenge: Set(b64(challenge)),
            purpose: Set(purpose.to_owned()),
            user_id: Set(user_id),
            state: Set(to_json(state)?),
            expires_at: Set(now + chrono::Duration::minutes(CEREMONY_MINUTES)),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Take the ceremony an answer belongs to, once: `None` when it is
    /// unknown, expired, already taken, or of another purpose.
    async fn take_ceremony(
        &self,
        challenge: &str,
        purpose: &str,
    ) -> AppResult<Option<entity::webauthn_ceremony::Model>> {
        let Some(ceremony) = global::find::<entity::webauthn_ceremony::Entity>()
            .filter(entity::webauthn_ceremony::Column::Challenge.eq(challenge))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let taken = global::delete_many::<entity::webauthn_ceremony::Entity>()
            .filter(entity::webauthn_ceremony::Column::Id.eq(ceremony.id))
            .exec(&self.db)
            .await?
            .rows_affected
            == 1;
        Ok(
            (taken && ceremony.purpose == purpose && ceremony.expires_at > Utc::now())
                .then_some(ceremony),
        )
    }

    /// Begin registering a passkey or security key for the caller: the
    /// options for `navigator.credentials.create`.
    pub async fn start_passkey_registration(&self, actor: &Actor) -> AppResult<serde_json::Value> {
        let webauthn = self.passkeys.get()?;
        let existing: Vec<_> = passkeys_of(&self.db, actor.user_id)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey.cred_id().clone())
            .collect();
        let display = format!("{} {}", actor.user.first_name, actor.user.last_name);
        let (options, state) = webauthn
            .start_passkey_registration(actor.user_id, &actor.user.email, &display, Some(existing))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey registration: {e}")))?;
        self.keep_ceremony(
            &options.public_key.challenge,
            "REGISTER",
            Some(actor.user_id),
            &state,
        )
        .await?;
        serde_json::to_value(&options).map_err(|e| AppError::Internal(e.into()))
    }

    /// Finish registering: the device's answer, checked against the
    /// ceremony, becomes a named authenticator. This session counts as
    /// verified with it from now.
    pub async fn finish_passkey_registration(
        &self,
        actor: &Actor,
        name: &str,
        credential: serde_json::Value,
    ) -> AppResult<entity::authenticator::Model> {
        let webauthn = self.passkeys.get()?;
        let name = text::required(name, "name", 100)?;
        let answer: RegisterPublicKeyCredential = parse(credential, "credential")?;
        let challenge = challenge_of(&answer.response.client_data_json, "credential")?;
        let ceremony = self
            .take_ceremony(&challenge, "REGISTER")
            .await?
            .filter(|c| c.user_id == Some(actor.user_id))
            .ok_or_else(|| {
                AppError::bad_input("credential", "answers no registration of yours under way")
            })?;
        let state: PasskeyRegistration =
            serde_json::from_str(&ceremony.state).map_err(|e| AppError::Internal(e.into()))?;
        let passkey = webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| refused("credential", e))?;
        let credential_id = b64(passkey.cred_id());
        // A credential is one person's in every organisation.
        let taken = unscoped::find::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::CredentialId.eq(credential_id.as_str()))
            .one(&self.db)
            .await?;
        if taken.is_some() {
            return Err(AppError::Conflict(
                "This passkey is already registered.".to_owned(),
            ));
        }
        let now = Utc::now();
        let txn = crate::db::begin_write(&self.db).await?;
        let authenticator = entity::authenticator::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(actor.user.organization_id),
            user_id: Set(actor.user_id),
            kind: Set("WEBAUTHN".to_owned()),
            name: Set(name),
            secret: Set(None),
            last_used_step: Set(None),
            confirmed_at: Set(Some(now)),
            last_used_at: Set(None),
            created_at: Set(now),
            credential: Set(Some(to_json(&passkey)?)),
            credential_id: Set(Some(credential_id)),
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            AuditEntry::by(actor, "mfa.passkey_registered")
                .target("Authenticator", authenticator.id)
                .changes(serde_json::json!({ "name": authenticator.name })),
        )
        .await?;
        txn.commit().await?;
        self.store.bump_user_epoch(actor.user_id).await?;
        self.store
            .record_second_factor(actor.session()?, AuthMethod::HardwareKey)
            .await?;
        Ok(authenticator)
    }

    /// Begin a login with a passkey: for the caller's own passkeys when a
    /// session asks (completing a pending login, or a step-up), else for the
    /// account of `email`, else for whichever passkey the device holds for
    /// this site. The options for `navigator.credentials.get`.
    pub async fn start_passkey_login(
        &self,
        actor: Option<&Actor>,
        email: Option<&str>,
    ) -> AppResult<serde_json::Value> {
        let webauthn = self.passkeys.get()?;
        let user_id = match (actor, email) {
            (Some(actor), _) => Some(actor.user_id),
            (None, Some(email)) => {
                let email = Email::parse(email, "email")?;
                unscoped::find::<entity::user::Entity>()
                    .filter(entity::user::Column::Email.eq(email.as_str()))
                    .filter(entity::user::Column::Status.eq("ACTIVE"))
                    .one(&self.db)
                    .await?
                    .map(|u| u.id)
                    .or(Some(Uuid::nil()))
            }
            (None, None) => None,
        };
        let passkeys: Vec<Passkey> = match user_id {
            Some(user_id) => passkeys_of(&self.db, user_id)
                .await?
                .into_iter()
                .map(|(_, passkey)| passkey)
                .collect(),
            None => Vec::new(),
        };
        if actor.is_some() && passkeys.is_empty() {
            return Err(AppError::bad_input(
                "credential",
                "you have no passkey: register one first",
            ));
        }
        if let (Some(user_id), false) = (user_id, passkeys.is_empty()) {
            let (options, state) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey login: {e}")))?;
            self.keep_ceremony(
                &options.public_key.challenge,
                "LOGIN",
                Some(user_id),
                &state,
            )
            .await?;
            return serde_json::to_value(&options).map_err(|e| AppError::Internal(e.into()));
        }
        // Whichever passkey the device holds names its user; an address
        // without one gets the same shape of answer as one with.
        let (mut options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey login: {e}")))?;
        // A login page's button, not only the browser's autofill.
        options.mediation = None;
        self.keep_ceremony(&options.public_key.challenge, "LOGIN", None, &state)
            .await?;
        let mut options =
            serde_json::to_value(&options).map_err(|e| AppError::Internal(e.into()))?;
        if let Some(email) = email {
            let decoys = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(
                &self.secrets.derive(b"passkey decoys"),
            )
            .and_then(|g| g.generate(email.trim().to_lowercase().as_bytes()))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey decoys: {e}")))?;
            options["publicKey"]["allowCredentials"] = decoys
                .iter()
                .map(|id| serde_json::json!({ "type": "public-key", "id": b64(id) }))
                .collect();
        }
        Ok(options)
    }

    /// Finish a login with a passkey. On a pending login it completes it (a
    /// new session, `pwd` and `hwk`); on a complete session it verifies the
    /// second factor again and keeps the token; without a session it logs in
    /// (`hwk`). A refused answer counts against the account like a wrong
    /// password.
    pub async fn finish_passkey_login(
        &self,
        actor: Option<&Actor>,
        presented: Option<&crate::auth::session::SessionToken>,
        credential: serde_json::Value,
        origin: Origin,
    ) -> AppResult<LoggedIn> {
        let webauthn = self.passkeys.get()?;
        let answer: PublicKeyCredential = parse(credential, "credential")?;
        let challenge = challenge_of(&answer.response.client_data_json, "credential")?;
        let not_under_way =
            || AppError::bad_input("credential", "answers no passkey login under way");
        let ceremony = self
            .take_ceremony(&challenge, "LOGIN")
            .await?
            .ok_or_else(not_under_way)?;
        let user_id = match ceremony.user_id {
            Some(id) => id,
            None => webauthn
                .identify_discoverable_authentication(&answer)
                .map(|(user, _)| user)
                .map_err(|e| refused("credential", e))?,
        };
        if actor.is_some_and(|a| a.user_id != user_id) {
            return Err(not_under_way());
        }
        let user = unscoped::find_by_id::<entity::user::Entity>(user_id)
            .one(&self.db)
            .await?
            .filter(|u| u.status == "ACTIVE")
            .ok_or_else(|| refused("credential", "no active account holds this passkey"))?;
        let key = email_key(&user.email);
        self.count_attempt(&key, EMAIL_FAILURE_LIMIT).await?;
        let passkeys = passkeys_of(&self.db, user.id).await?;
        let result = match ceremony.user_id {
            Some(_) => {
                let state: PasskeyAuthentication = serde_json::from_str(&ceremony.state)
                    .map_err(|e| AppError::Internal(e.into()))?;
                webauthn.finish_passkey_authentication(&answer, &state)
            }
            None => {
                let state: DiscoverableAuthentication = serde_json::from_str(&ceremony.state)
                    .map_err(|e| AppError::Internal(e.into()))?;
                let used = passkeys
                    .iter()
                    .find(|(_, p)| p.cred_id().as_slice() == answer.raw_id.as_slice())
                    .ok_or_else(|| refused("credential", "this passkey is not registered"))?;
                webauthn.finish_discoverable_authentication_v2(&answer, state, &used.1)
            }
        };
        let result = match result {
            Ok(result) => result,
            Err(err) => {
                audit::record(
                    &self.db,
                    AuditEntry {
                        organization_id: Some(user.organization_id),
                        actor_user_id: actor.map(|a| a.user_id),
                        session_id: actor.and_then(|a| a.session().ok()).map(|id| id.0.clone()),
                        action: "auth.passkey_failed",
                        origin,
                        changes: Some(serde_json::json!({ "reason": err.to_string() })),
                        ..AuditEntry::default()
                    }
                    .target("User", user.id),
                )
                .await?;
                events::login("mfa_failed");
                return Err(refused("credential", err));
            }
        };
        // The counter moves on: the next answer must carry a higher one.
        for (row, mut passkey) in passkeys {
            if passkey.cred_id().as_slice() != result.cred_id().as_slice() {
                continue;
            }
            passkey.update_credential(&result);
            unscoped::update_many::<entity::authenticator::Entity>()
                .col_expr(
                    entity::authenticator::Column::Credential,
                    Expr::value(to_json(&passkey)?),
                )
                .col_expr(
                    entity::authenticator::Column::LastUsedAt,
                    Expr::value(Utc::now()),
                )
                .filter(entity::authenticator::Column::Id.eq(row.id))
                .exec(&self.db)
                .await?;
        }
        match actor {
            Some(actor) => {
                audit::record(
                    &self.db,
                    AuditEntry::by(actor, "auth.mfa_verified")
                        .target("User", actor.user_id)
                        .changes(serde_json::json!({ "factor": "passkey" })),
                )
                .await?;
                self.second_factor_verified(actor, presented, AuthMethod::HardwareKey)
                    .await
            }
            None => {
                self.store.clear_failures(&key).await?;
                events::login("ok");
                self.open_session(user, &[AuthMethod::HardwareKey], "auth.login", origin)
                    .await
            }
        }
    }
}
