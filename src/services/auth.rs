//! Logging in and out, changing passwords, and turning a presented token into an
//! [`Actor`] on every request.
//!
//! Permissions are cached per instance, keyed by the organisation's authorisation
//! epoch that the session lookup returns in the same round trip. Any change of a
//! user's roles, a role's permissions or a user's status replaces the epoch, so the
//! very next request on every instance reloads from the database: no cached
//! permission outlives a change.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, QueryFilter, QuerySelect,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    invites,
};
use crate::db::{Scope, global, unscoped};
use crate::{
    auth::{
        Actor, Credential, Permission,
        actor::{BreakGlassAccess, OrganizationEpoch, Origin},
        mfa::{MfaPolicy, PENDING_LOGIN, SecretKey},
        password::{Hasher, Password, PasswordPolicy, Verified},
        session::{AuthMethod, NewSession, SessionRecord, SessionStore, SessionToken},
    },
    domain::Email,
    error::{AppError, AppResult},
    telemetry::events,
};

/// Failed logins for one email before it is locked, and for how long.
pub const EMAIL_FAILURE_LIMIT: u64 = 10;
/// Failed logins from one address before it is locked.
pub const IP_FAILURE_LIMIT: u64 = 100;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password-reset requests for one email within [`FAILURE_WINDOW`].
pub const RESET_REQUEST_LIMIT: u64 = 5;
/// Password-reset requests from one client address within [`FAILURE_WINDOW`].
pub const IP_RESET_REQUEST_LIMIT: u64 = 30;
const CACHE_CAPACITY: usize = 50_000;

/// What an instance keeps of a user between requests, valid while the epochs
/// it was read under stand (and never longer than [`CACHE_FOR`]).
struct CachedAuthz {
    epoch: String,
    loaded: std::time::Instant,
    user: Arc<entity::user::Model>,
    permissions: Arc<BTreeSet<Permission>>,
    has_second_factor: bool,
    must_enroll_mfa: bool,
    break_glass: Option<Arc<BreakGlassAccess>>,
    /// The moment what was read changes by time alone (emergency access
    /// ending, a required certification lapsing): the entry is read again
    /// from then.
    until: Option<chrono::DateTime<Utc>>,
}

impl CachedAuthz {
    fn fresh(&self, epoch: &str) -> bool {
        self.epoch == epoch
            && self.loaded.elapsed() < CACHE_FOR
            && self.until.is_none_or(|until| Utc::now() < until)
    }
}

/// A backstop: whatever the epochs say, an entry is read again after this.
const CACHE_FOR: Duration = Duration::from_secs(300);

/// A successful login, or one whose second factor is still to come.
pub struct LoggedIn {
    pub token: SessionToken,
    pub session: SessionRecord,
    pub user: entity::user::Model,
    /// The kinds of second factor the user may complete a pending login with
    /// (`TOTP`, `RECOVERY_CODE`, `WEBAUTHN`); empty when the login is complete.
    pub mfa_methods: Vec<&'static str>,
    /// The organisation's policy asks this user to enrol a second factor first.
    pub must_enroll_mfa: bool,
}

pub struct Authenticator {
    pub(super) db: DatabaseConnection,
    pub(super) store: Arc<dyn SessionStore>,
    hasher: Hasher,
    /// Encrypts TOTP secrets and keys the digests of recovery codes.
    pub(super) secrets: SecretKey,
    /// The relying party of passkeys.
    pub(super) passkeys: super::passkeys::Passkeys,
    session_max: Duration,
    /// Requests per minute per API client.
    pub(super) client_rate_limit: u32,
    cache: Mutex<HashMap<Uuid, CachedAuthz>>,
}

impl Authenticator {
    pub fn new(
        db: DatabaseConnection,
        store: Arc<dyn SessionStore>,
        hasher: Hasher,
        secrets: SecretKey,
        passkeys: super::passkeys::Passkeys,
        session_max: Duration,
    ) -> Self {
        Self {
            db,
            store,
            hasher,
            secrets,
            passkeys,
            session_max,
            client_rate_limit: 600,
            cache: Mutex::default(),
        }
    }

    /// Requests per minute each API client may make.
    pub fn with_client_rate_limit(mut self, per_minute: u32) -> Self {
        self.client_rate_limit = per_minute.max(1);
        self
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The key for secrets at rest.
    pub fn secrets(&self) -> &SecretKey {
        &self.secrets
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The actor behind a presented token, or `None` when the token opens no live
    /// session. Costs one store round trip, plus one database query when the
    /// organisation's permissions changed since this instance last looked.
    pub async fn resolve(&self, token: &SessionToken, origin: Origin) -> AppResult<Option<Actor>> {
        let Some(touched) = self.store.touch(&token.id()).await? else {
            return Ok(None);
        };
        let session = touched.session;
        // The organisation's part of the epochs ("organisation/user").
        let epoch = touched
            .authz_epoch
            .split_once('/')
            .map(|(organization, _)| OrganizationEpoch {
                organization_id: session.organization_id,
                epoch: organization.into(),
            });
        let provider_verified = session.auth_methods.contains(&AuthMethod::Mfa);
        // The two shared parts only: no copy of the entry's epoch per request.
        let cached = self
            .cache_lock()
            .get(&session.user_id)
            .filter(|c| c.fresh(&touched.authz_epoch))
            .map(|c| {
                (
                    (c.user.clone(), c.permissions.clone(), c.break_glass.clone()),
                    (c.has_second_factor, c.must_enroll_mfa),
                )
            });
        let ((user, permissions, break_glass), (has_second_factor, must_enroll_mfa)) = match cached
        {
            Some(shared) => shared,
            None => {
                let Some(authz) = self
                    .load_authz(session.user_id, touched.authz_epoch)
                    .await?
                else {
                    // The user is gone or inactive: the session must not outlive them.
                    self.store.revoke(&session.id).await?;
                    return Ok(None);
                };
                let mut cache = self.cache_lock();
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                let shared = (
                    (
                        authz.user.clone(),
                        authz.permissions.clone(),
                        authz.break_glass.clone(),
                    ),
                    (authz.has_second_factor, authz.must_enroll_mfa),
                );
                cache.insert(session.user_id, authz);
                shared
            }
        };
        Ok(Some(Actor {
            user_id: session.user_id,
            organization_id: session.organization_id,
            credential: Credential::Session(session.id),
            permissions,
            user,
            origin,
            auth_methods: session.auth_methods,
            mfa_pending: session.mfa_pending,
            mfa_verified_at: session.mfa_verified_at,
            has_second_factor,
            // A session whose second factor the identity provider verified
            // meets the policy without one of Rollcall's own.
            must_enroll_mfa: must_enroll_mfa && !provider_verified,
            break_glass,
            epoch,
        }))
    }

    /// The caller behind a presented session token, as every door (GraphQL
    /// over HTTP, a websocket's operations, downloads) resolves it: `None`
    /// when the session has ended or its user is gone; a super admin acting
    /// in `organization` when one is asked for (anyone else is refused).
    pub async fn actor_for(
        &self,
        token: &SessionToken,
        organization: Option<Uuid>,
        origin: Origin,
    ) -> AppResult<Option<Actor>> {
        let Some(actor) = self.resolve(token, origin).await? else {
            return Ok(None);
        };
        match organization {
            Some(id) => self.act_in(actor, id).await.map(Some),
            None => Ok(Some(actor)),
        }
    }

    /// The same actor acting inside another organisation: only a super admin may,
    /// and only in one that exists. Everything they do is then scoped to, and
    /// audited in, that organisation.
    pub async fn act_in(&self, actor: Actor, organization_id: Uuid) -> AppResult<Actor> {
        if organization_id == actor.organization_id {
            return Ok(actor);
        }
        if !actor.is_super_admin() {
            return Err(AppError::forbidden(
                "Only a super admin may act inside another organisation.",
            ));
        }
        global::find_by_id::<entity::organization::Entity>(organization_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("Organization"))?;
        Ok(Actor {
            organization_id,
            ..actor
        })
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CachedAuthz>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn load_authz(&self, user_id: Uuid, epoch: String) -> AppResult<Option<CachedAuthz>> {
        let Some(user) = unscoped::find_by_id::<entity::user::Entity>(user_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if user.status != "ACTIVE" {
            return Ok(None);
        }
        let (permissions, standing_changes) =
            super::roles::standing_permissions(&self.db, Scope::of(user.organization_id), user_id)
                .await?;
        let has_second_factor = !second_factors_of(&self.db, user_id).await?.is_empty();
        let policy = mfa_policy_of(&self.db, user.organization_id).await?;
        let must_enroll_mfa =
            !has_second_factor && policy.applies_to(user.is_super_admin, &permissions);
        let break_glass = super::break_glass::in_force(&self.db, user_id).await?;
        let until = [
            break_glass.as_ref().map(|access| access.stops_at),
            standing_changes,
        ]
        .into_iter()
        .flatten()
        .min();
        Ok(Some(CachedAuthz {
            epoch,
            loaded: std::time::Instant::now(),
            user: Arc::new(user),
            permissions: Arc::new(permissions),
            has_second_factor,
            must_enroll_mfa,
            break_glass: break_glass.map(Arc::new),
            until,
        }))
    }

    /// Log in with email and password. Every failure answers the same and takes as
    /// long, whether the account exists, is inactive or has no password yet.
    pub async fn login(&self, email: &str, password: &str, origin: Origin) -> AppResult<LoggedIn> {
        let email = email.trim().to_lowercase();
        let email_key = email_key(&email);
        let ip_key = origin.ip_address.as_ref().map(|ip| format!("ip:{ip}"));
        // Counted before it is judged, so thirty guesses at once cannot all
        // be tried: a success takes its count back.
        self.count_attempt(&email_key, EMAIL_FAILURE_LIMIT).await?;
        if let Some(ip_key) = &ip_key
            && let Err(limited) = self.count_attempt(ip_key, IP_FAILURE_LIMIT).await
        {
            self.store.forgive_attempt(&email_key).await?;
            return Err(limited);
        }

        // An address no user can have is not looked up (it may not even be
        // storable), but is answered like any unknown one, in the same time.
        let user = if Email::parse(&email, "email").is_ok() {
            unscoped::find::<entity::user::Entity>()
                .filter(entity::user::Column::Email.eq(email.as_str()))
                .one(&self.db)
                .await?
        } else {
            None
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let verified = self.hasher.verify(password, stored).await?;
        let user = match (user, verified) {
            (Some(user), verified @ (Verified::Yes | Verified::YesRehashed(_)))
                if user.status == "ACTIVE" =>
            {
                if let Verified::YesRehashed(new_hash) = verified {
                    let mut active: entity::user::ActiveModel = user.clone().into();
                    active.password_hash = Set(Some(new_hash));
                    active.update(&self.db).await?;
                }
                user
            }
            (user, _) => {
                audit::record(
                    &self.db,
                    AuditEntry {
                        organization_id: user.as_ref().map(|u| u.organization_id),
                        action: "auth.login_failed",
                        origin,
                        ..AuditEntry::default()
                    }
                    .target_opt("User", user.as_ref().map(|u| u.id)),
                )
                .await?;
                events::login("failed");
                return Err(AppError::InvalidCredentials);
            }
        };
        if let Some(ip_key) = &ip_key {
            self.store.forgive_attempt(ip_key).await?;
        }
        // Judged only after the password, so that the answer tells nothing
        // to whoever does not know it.
        if !super::sso::password_login_allowed(&self.db, &user).await? {
            self.store.forgive_attempt(&email_key).await?;
            events::login("sso_required");
            return Err(AppError::SsoRequired);
        }
        let factors = second_factors_of(&self.db, user.id).await?;
        if !factors.is_empty() {
            // The password was right: it takes its attempt back, but the
            // email's count stands until the second factor is verified, so
            // that a known password gives no fresh allowance of code guesses.
            self.store.forgive_attempt(&email_key).await?;
            events::login("mfa_pending");
            return self.open_pending_session(user, factors, origin).await;
        }
        self.store.clear_failures(&email_key).await?;
        events::login("ok");
        self.open_session(user, &[AuthMethod::Password], "auth.login", origin)
            .await
    }

    /// Redeem a one-time link: set the user's password and log them in. A
    /// password-reset link also ends every other session of the user, before
    /// the new password is committed, and lifts a lockout of their email.
    pub async fn set_password_with_link(
        &self,
        token: &str,
        password: &str,
        origin: Origin,
    ) -> AppResult<LoggedIn> {
        let (link, user) = invites::find_open(&self.db, token).await?;
        if !super::sso::password_login_allowed(&self.db, &user).await? {
            return Err(AppError::SsoRequired);
        }
        let purpose = invites::Purpose::of(&link);
        let organization = global::find_by_id::<entity::organization::Entity>(user.organization_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user without organisation"))?;
        let password = Password::parse(
            password,
            policy_of(&organization),
            Some(&user.email),
            "password",
        )?;
        let hash = self.hasher.hash(&password).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        if !invites::redeem(&txn, link.id).await? {
            // Another request redeemed it first.
            return Err(invites::find_open(&txn, token)
                .await
                .err()
                .unwrap_or_else(|| AppError::bad_input("token", "this link was already used")));
        }
        invites::revoke_open(&txn, user.id).await?;
        let mut active: entity::user::ActiveModel = user.into();
        active.password_hash = Set(Some(hash));
        active.must_change_password = Set(false);
        active.updated_at = Set(Utc::now());
        let user = active.update(&txn).await?;
        let action = match purpose {
            invites::Purpose::Invite => "user.accept_invite",
            invites::Purpose::PasswordReset => "user.reset_password_with_link",
        };
        audit::record(
            &txn,
            AuditEntry {
                organization_id: Some(user.organization_id),
                actor_user_id: Some(user.id),
                action,
                origin: origin.clone(),
                ..AuditEntry::default()
            }
            .target("User", user.id),
        )
        .await?;
        if purpose == invites::Purpose::PasswordReset {
            notify_password_changed(&txn, &user, PasswordChanged::WithResetLink).await?;
            // Whoever held the old password holds none of its sessions: they end
            // before the commit, so a store that cannot end them changes nothing.
            self.store.revoke_user(user.id, None).await?;
            self.store.clear_failures(&email_key(&user.email)).await?;
        }
        txn.commit().await?;
        if purpose == invites::Purpose::PasswordReset {
            // A reset link proves the mailbox, not the second factor.
            let factors = second_factors_of(&self.db, user.id).await?;
            if !factors.is_empty() {
                return self.open_pending_session(user, factors, origin).await;
            }
        }
        self.open_session(user, &[AuthMethod::Password], "auth.login", origin)
            .await
    }

    /// Ask for a password-reset link for `email`. The answer is the same whether
    /// or not an account has that address, and takes as long: the link is
    /// made and queued in the background, and goes only to an active account's
    /// own address. Each email and each client address may ask
    /// [`RESET_REQUEST_LIMIT`] and [`IP_RESET_REQUEST_LIMIT`] times per
    /// [`FAILURE_WINDOW`]; more answer RATE_LIMITED.
    pub async fn request_password_reset(
        &self,
        email: &str,
        origin: Origin,
        public_url: &str,
    ) -> AppResult<()> {
        let email = email.trim().to_lowercase();
        let keys = [
            Some((format!("reset:{}", email_key(&email)), RESET_REQUEST_LIMIT)),
            origin
                .ip_address
                .as_ref()
                .map(|ip| (format!("reset:ip:{ip}"), IP_RESET_REQUEST_LIMIT)),
        ];
        let mut locked = None;
        for (key, limit) in keys.into_iter().flatten() {
            let attempts = self
                .store
                .record_failure(&key, limit, FAILURE_WINDOW)
                .await?;
            if attempts.count > limit {
                locked = locked.max(Some(attempts.retry_after));
            }
        }
        if let Some(retry_after) = locked {
            events::password_reset_requested("limited");
            return Err(AppError::RateLimited {
                retry_after_seconds: retry_after.as_secs().max(1),
            });
        }
        events::password_reset_requested("accepted");
        let Ok(email) = Email::parse(&email, "email") else {
            return Ok(());
        };
        let db = self.db.clone();
        let public_url = public_url.to_owned();
        tokio::spawn(async move {
            if let Err(err) = issue_reset(&db, &email, origin, &public_url).await {
                tracing::warn!(error = %err, "password reset link not issued");
            }
        });
        Ok(())
    }

    /// Count one attempt under `key` before it is judged; `RATE_LIMITED` once
    /// more than `limit` were made within the window.
    pub(super) async fn count_attempt(&self, key: &str, limit: u64) -> AppResult<()> {
        let attempts = self
            .store
            .record_failure(key, limit, FAILURE_WINDOW)
            .await?;
        if attempts.count > limit {
            events::login("locked");
            return Err(AppError::RateLimited {
                retry_after_seconds: attempts.retry_after.as_secs().max(1),
            });
        }
        Ok(())
    }

    /// A login whose password was right and whose second factor is still to
    /// come: a session that lasts five minutes and may do nothing but complete
    /// the login (or log out).
    async fn open_pending_session(
        &self,
        user: entity::user::Model,
        factors: Vec<&'static str>,
        origin: Origin,
    ) -> AppResult<LoggedIn> {
        let (token, session) = self
            .store
            .create(NewSession {
                user_id: user.id,
                organization_id: user.organization_id,
                idle_timeout: PENDING_LOGIN,
                max_lifetime: PENDING_LOGIN,
                ip_address: origin.ip_address.clone(),
                user_agent: origin.user_agent.clone(),
                auth_methods: vec![AuthMethod::Password],
                mfa_pending: true,
                mfa_verified: false,
            })
            .await?;
        audit::record(
            &self.db,
            AuditEntry::by_opening_session(&user, &session.id, "auth.login_mfa_pending", origin)
                .changes(serde_json::json!({ "authMethods": ["pwd"] })),
        )
        .await?;
        let mut methods = factors;
        methods.push("RECOVERY_CODE");
        Ok(LoggedIn {
            token,
            session,
            user,
            mfa_methods: methods,
            must_enroll_mfa: false,
        })
    }

    /// A new session for a user who proved who they are with `methods`;
    /// recorded as `action`.
    pub(super) async fn open_session(
        &self,
        user: entity::user::Model,
        methods: &[AuthMethod],
        action: &'static str,
        origin: Origin,
    ) -> AppResult<LoggedIn> {
        let organization = global::find_by_id::<entity::organization::Entity>(user.organization_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user without organisation"))?;
        let idle_minutes = user
            .idle_timeout_minutes
            .unwrap_or(organization.default_idle_timeout_minutes)
            .clamp(1, 720);
        let mfa_verified = methods.iter().any(|m| m.is_second_factor());
        let (token, session) = self
            .store
            .create(NewSession {
                user_id: user.id,
                organization_id: user.organization_id,
                idle_timeout: Duration::from_secs(u64::try_from(idle_minutes).unwrap_or(30) * 60),
                max_lifetime: self.session_max,
                ip_address: origin.ip_address.clone(),
                user_agent: origin.user_agent.clone(),
                auth_methods: methods.to_vec(),
                mfa_pending: false,
                mfa_verified,
            })
            .await?;
        let now = Utc::now();
        let mut active: entity::user::ActiveModel = user.clone().into();
        active.last_login_at = Set(Some(now));
        let user = active.update(&self.db).await?;
        self.store.bump_user_epoch(user.id).await?;
        audit::record(
            &self.db,
            AuditEntry::by_opening_session(&user, &session.id, action, origin).changes(
                serde_json::json!({ "authMethods": crate::auth::session::methods_names(methods) }),
            ),
        )
        .await?;
        let policy = mfa_policy_of(&self.db, user.organization_id).await?;
        let must_enroll_mfa = !mfa_verified
            && policy != MfaPolicy::None
            && second_factors_of(&self.db, user.id).await?.is_empty()
            && policy.applies_to(
                user.is_super_admin,
                &super::roles::permissions_of(&self.db, Scope::of(user.organization_id), user.id)
                    .await?,
            );
        Ok(LoggedIn {
            token,
            session,
            user,
            mfa_methods: Vec::new(),
            must_enroll_mfa,
        })
    }

    /// End the actor's own session.
    pub async fn logout(&self, actor: &Actor) -> AppResult<()> {
        let session = actor.session()?;
        self.store.revoke(session).await?;
        audit::record(
            &self.db,
            AuditEntry::by(actor, "auth.logout").target("Session", session),
        )
        .await
    }

    /// Change the actor's password: their other sessions end, this one stays.
    pub async fn change_password(&self, actor: &Actor, current: &str, new: &str) -> AppResult<()> {
        let user = actor
            .home()
            .find_by_id::<entity::user::Entity>(actor.user_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let organization = global::find_by_id::<entity::organization::Entity>(user.organization_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user without organisation"))?;
        // A stolen session must not become a way to guess the password: each
        // try counts against the account like a login.
        let email_key = email_key(&user.email);
        self.count_attempt(&email_key, EMAIL_FAILURE_LIMIT).await?;
        if self
            .hasher
            .verify(current, user.password_hash.as_deref())
            .await?
            == Verified::No
        {
            return Err(AppError::bad_input(
                "currentPassword",
                "is not your current password",
            ));
        }
        self.store.forgive_attempt(&email_key).await?;
        let policy = policy_of(&organization);
        let password = Password::parse(new, policy, Some(&user.email), "newPassword")?;
        if self
            .hasher
            .verify(password.expose(), user.password_hash.as_deref())
            .await?
            != Verified::No
        {
            return Err(AppError::bad_input(
                "newPassword",
                "must differ from your current password",
            ));
        }
        let hash = self.hasher.hash(&password).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        let mut active: entity::user::ActiveModel = user.into();
        active.password_hash = Set(Some(hash));
        active.must_change_password = Set(false);
        active.updated_at = Set(Utc::now());
        let user = active.update(&txn).await?;
        audit::record(
            &txn,
            AuditEntry::by(actor, "user.change_password").target("User", actor.user_id),
        )
        .await?;
        notify_password_changed(&txn, &user, PasswordChanged::ByThemselves).await?;
        txn.commit().await?;
        self.store
            .revoke_user(actor.user_id, Some(actor.session()?))
            .await?;
        self.store.bump_authz_epoch(actor.organization_id).await?;
        Ok(())
    }
}

/// How a user's password came to change, for the email that tells them.
#[derive(Clone, Copy)]
pub enum PasswordChanged {
    /// They changed it themselves, signed in.
    ByThemselves,
    /// Through a password-reset link.
    WithResetLink,
    /// An administrator gave them a generated one.
    ByAdministrator,
}

/// Tell a user, at their own address and in the caller's transaction, that
/// their password changed: if it was not them, they hear of it and can act.
pub(crate) async fn notify_password_changed(
    db: &impl sea_orm::ConnectionTrait,
    user: &entity::user::Model,
    how: PasswordChanged,
) -> AppResult<()> {
    let what = match how {
        PasswordChanged::ByThemselves => "was changed from your signed-in account",
        PasswordChanged::WithResetLink => {
            "was changed through a password-reset link, and every other session of yours was ended"
        }
        PasswordChanged::ByAdministrator => {
            "was reset by an administrator of your organisation; you will choose a new one at your next sign-in"
        }
    };
    let to = Email::parse(&user.email, "email")?;
    super::outbox::enqueue_email(
        db,
        super::outbox::NewEmail {
            organization_id: Some(user.organization_id),
            kind: "user.password_changed",
            to: &to,
            subject: "Your Rollcall password was changed".to_owned(),
            body: format!(
                "Hello {first},\n\nThe password of your Rollcall account ({email}) {what}, \
                 at {at} UTC.\n\nIf this was not you, tell your administrator at once.\n",
                first = user.first_name,
                email = user.email,
                at = Utc::now().format("%Y-%m-%d %H:%M"),
            ),
        },
    )
    .await?;
    Ok(())
}

/// The key counting failed logins for an email (normalised): a digest, so the
/// store never holds the address.
pub(super) fn email_key(email: &str) -> String {
    format!("email:{}", hex::encode(Sha256::digest(email.as_bytes())))
}

/// Make a password-reset link for the active account of `email`, if there is
/// one, and queue its email; record the request either way.
async fn issue_reset(
    db: &DatabaseConnection,
    email: &Email,
    origin: Origin,
    public_url: &str,
) -> AppResult<()> {
    let user = unscoped::find::<entity::user::Entity>()
        .filter(entity::user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
        .filter(|user| user.status == "ACTIVE");
    let txn = crate::db::begin_write(db).await?;
    if let Some(user) = &user {
        invites::issue_reset(&txn, user, public_url).await?;
    }
    audit::record(
        &txn,
        AuditEntry {
            organization_id: user.as_ref().map(|u| u.organization_id),
            action: "auth.password_reset_requested",
            origin,
            ..AuditEntry::default()
        }
        .target_opt("User", user.as_ref().map(|u| u.id)),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The kinds of confirmed second factor a user has (`TOTP`, `WEBAUTHN`), each once.
pub async fn second_factors_of(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> AppResult<Vec<&'static str>> {
    let kinds: Vec<String> = unscoped::find::<entity::authenticator::Entity>()
        .select_only()
        .column(entity::authenticator::Column::Kind)
        .filter(entity::authenticator::Column::UserId.eq(user_id))
        .filter(entity::authenticator::Column::ConfirmedAt.is_not_null())
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    Ok(["TOTP", "WEBAUTHN"]
        .into_iter()
        .filter(|kind| kinds.iter().any(|k| k == kind))
        .collect())
}

/// Who in an organisation must have a second factor.
pub async fn mfa_policy_of(
    db: &impl sea_orm::ConnectionTrait,
    organization_id: Uuid,
) -> AppResult<MfaPolicy> {
    let stored: Option<String> =
        global::find_by_id::<entity::organization::Entity>(organization_id)
            .select_only()
            .column(entity::organization::Column::MfaRequired)
            .into_tuple()
            .one(db)
            .await?;
    Ok(stored.map_or(MfaPolicy::None, |s| MfaPolicy::from_stored(&s)))
}

pub fn policy_of(organization: &entity::organization::Model) -> PasswordPolicy {
    PasswordPolicy {
        min_length: usize::try_from(organization.password_min_length).unwrap_or(8),
        require_digit: organization.password_require_digit,
    }
}
