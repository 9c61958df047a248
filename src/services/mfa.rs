//! Second factors: enrolling a TOTP app, completing a login with a code,
//! verifying again before a sensitive operation, recovery codes, and an
//! administrator's reset.
//!
//! Every code a user types counts against their email like a password: after
//! ten wrong ones in fifteen minutes the account answers RATE_LIMITED, whatever
//! the session. A TOTP code is accepted once (the step it matched is stored
//! under a conditional update, so thirty requests with one code make one
//! success); a recovery code is used once the same way.

use std::collections::HashMap;

use chrono::Utc;
use qrcode::{QrCode, render::svg};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    auth::{Authenticator, EMAIL_FAILURE_LIMIT, LoggedIn, email_key},
    users,
};
use crate::db::Scope;
use crate::{
    auth::{
        Actor, Permission,
        mfa::{self, SecretKey},
        session::{AuthMethod, SessionToken},
    },
    error::{AppError, AppResult},
    telemetry::events,
};

/// The name authenticator apps show above the account.
const ISSUER: &str = "Rollcall";

/// What an authenticator app needs to start producing codes.
pub struct TotpEnrollment {
    /// Base32, for typing into an app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG image.
    pub qr_code_svg: String,
}

/// Which kind of code a user typed.
enum Code {
    Totp(String),
    Recovery(String),
}

impl Code {
    fn parse(typed: &str) -> AppResult<Self> {
        let trimmed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Totp(trimmed));
        }
        mfa::normalize_recovery_code(typed)
            .map(Self::Recovery)
            .ok_or_else(|| {
                AppError::bad_input(
                    "code",
                    "must be the six digits your app shows or one of your recovery codes",
                )
            })
    }
}

impl Authenticator {
    /// Begin enrolling a TOTP app: a new secret, waiting for its first code.
    /// An enrolment not yet confirmed is replaced; a user with a confirmed TOTP
    /// app removes it first.
    pub async fn start_totp_enrollment(&self, actor: &Actor) -> AppResult<TotpEnrollment> {
        let existing = actor
            .home()
            .find::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::UserId.eq(actor.user_id))
            .filter(entity::authenticator::Column::Kind.eq("TOTP"))
            .all(&self.db)
            .await?;
        if existing.iter().any(|a| a.confirmed_at.is_some()) {
            return Err(AppError::Conflict(
                "You already have an authenticator app; remove it before enrolling another."
                    .to_owned(),
            ));
        }
        let secret = mfa::new_totp_secret();
        let totp = mfa::totp(&secret, ISSUER, &actor.user.email)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("TOTP set-up: {e}")))?;
        let uri = totp.get_url();
        let qr_code_svg = QrCode::new(uri.as_bytes())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("QR code: {e}")))?
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        let id = Uuid::now_v7();
        let txn = crate::db::begin_write(&self.db).await?;
        actor
            .home()
            .delete_many::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::UserId.eq(actor.user_id))
            .filter(entity::authenticator::Column::Kind.eq("TOTP"))
            .filter(entity::authenticator::Column::ConfirmedAt.is_null())
            .exec(&txn)
            .await?;
        entity::authenticator::ActiveModel {
            id: Set(id),
            organization_id: Set(actor.user.organization_id),
            user_id: Set(actor.user_id),
            kind: Set("TOTP".to_owned()),
            name: Set("Authenticator app".to_owned()),
            secret: Set(Some(self.secrets.seal(&secret, id.as_bytes()))),
            last_used_step: Set(None),
            confirmed_at: Set(None),
            last_used_at: Set(None),
            created_at: Set(Utc::now()),
            credential: Set(None),
            credential_id: Set(None),
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            AuditEntry::by(actor, "mfa.totp_enrollment_started").target("User", actor.user_id),
        )
        .await?;
        txn.commit().await?;
        Ok(TotpEnrollment {
            secret: mfa::totp_secret_text(&secret),
            otpauth_uri: uri,
            qr_code_svg,
        })
    }

    /// Turn the enrolment on with a first code from the app; the user's new
    /// recovery codes, shown this once. This session counts as verified with
    /// the second factor from now.
    pub async fn confirm_totp_enrollment(
        &self,
        actor: &Actor,
        code: &str,
    ) -> AppResult<Vec<String>> {
        let Code::Totp(code) = Code::parse(code)? else {
            return Err(AppError::bad_input(
                "code",
                "must be the six digits your app shows",
            ));
        };
        let pending = actor
            .home()
            .find::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::UserId.eq(actor.user_id))
            .filter(entity::authenticator::Column::Kind.eq("TOTP"))
            .filter(entity::authenticator::Column::ConfirmedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                AppError::bad_input("code", "there is no enrolment to confirm: start one first")
            })?;
        let key = email_key(&actor.user.email);
        self.count_attempt(&key, EMAIL_FAILURE_LIMIT).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        if !use_totp(&txn, &self.secrets, &pending, &code).await? {
            drop(txn);
            return Err(self.wrong_code(actor).await);
        }
        let confirmed = actor
            .home()
            .update_many::<entity::authenticator::Entity>()
            .col_expr(
                entity::authenticator::Column::ConfirmedAt,
                Expr::value(Utc::now()),
            )
            .filter(entity::authenticator::Column::Id.eq(pending.id))
            .filter(entity::authenticator::Column::ConfirmedAt.is_null())
            .exec(&txn)
            .await?;
        if confirmed.rows_affected != 1 {
            return Err(AppError::Conflict(
                "This enrolment was already confirmed.".to_owned(),
            ));
        }
        let codes = replace_recovery_codes(&txn, &self.secrets, actor).await?;
        audit::record(
            &txn,
            AuditEntry::by(actor, "mfa.totp_enrolled").target("Authenticator", pending.id),
        )
        .await?;
        txn.commit().await?;
        self.store.forgive_attempt(&key).await?;
        self.store.bump_user_epoch(actor.user_id).await?;
        self.store
            .record_second_factor(actor.session()?, AuthMethod::Otp)
            .await?;
        Ok(codes)
    }

    /// Verify a TOTP or recovery code on the caller's session. A login waiting
    /// for it is completed: the pending session ends and a full one begins,
    /// with a new token. A complete session is marked verified now (a step-up
    /// before a sensitive operation) and keeps its token.
    pub async fn verify_mfa(
        &self,
        actor: &Actor,
        presented: Option<&SessionToken>,
        typed: &str,
    ) -> AppResult<LoggedIn> {
        let code = Code::parse(typed)?;
        let key = email_key(&actor.user.email);
        self.count_attempt(&key, EMAIL_FAILURE_LIMIT).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        let used = match &code {
            Code::Totp(code) => {
                let totp = actor
                    .home()
                    .find::<entity::authenticator::Entity>()
                    .filter(entity::authenticator::Column::UserId.eq(actor.user_id))
                    .filter(entity::authenticator::Column::Kind.eq("TOTP"))
                    .filter(entity::authenticator::Column::ConfirmedAt.is_not_null())
                    .one(&txn)
                    .await?;
                match totp {
                    Some(totp) => use_totp(&txn, &self.secrets, &totp, code).await?,
                    None => false,
                }
            }
            Code::Recovery(code) => {
                actor
                    .home()
                    .update_many::<entity::recovery_code::Entity>()
                    .col_expr(
                        entity::recovery_code::Column::UsedAt,
                        Expr::value(Utc::now()),
                    )
                    .filter(entity::recovery_code::Column::UserId.eq(actor.user_id))
                    .filter(entity::recovery_code::Column::CodeHash.eq(self.secrets.digest(code)))
                    .filter(entity::recovery_code::Column::UsedAt.is_null())
                    .exec(&txn)
                    .await?
                    .rows_affected
                    == 1
            }
        };
        if !used {
            drop(txn);
            return Err(self.wrong_code(actor).await);
        }
        let kind = match code {
            Code::Totp(_) => "totp",
            Code::Recovery(_) => "recovery_code",
        };
        audit::record(
            &txn,
            AuditEntry::by(actor, "auth.mfa_verified")
                .target("User", actor.user_id)
                .changes(serde_json::json!({ "factor": kind })),
        )
        .await?;
        txn.commit().await?;
        self.second_factor_verified(actor, presented, AuthMethod::Otp)
            .await
    }

    /// A second factor (`method`) was verified on the caller's session. A
    /// login waiting for it is completed: the pending session ends and a
    /// full one begins, with a new token, and the account's failed attempts
    /// are cleared. A complete session is marked verified now (a step-up) and
    /// keeps its token.
    pub(super) async fn second_factor_verified(
        &self,
        actor: &Actor,
        presented: Option<&SessionToken>,
        method: AuthMethod,
    ) -> AppResult<LoggedIn> {
        let key = email_key(&actor.user.email);
        if actor.mfa_pending {
            self.store.clear_failures(&key).await?;
            self.store.revoke(actor.session()?).await?;
            events::login("ok");
            let user = actor
                .home()
                .find_by_id::<entity::user::Entity>(actor.user_id)
                .one(&self.db)
                .await?
                .filter(|u| u.status == "ACTIVE")
                .ok_or(AppError::Unauthenticated)?;
            let mut methods = actor.auth_methods.clone();
            methods.push(method);
            return self
                .open_session(user, &methods, "auth.login", actor.origin.clone())
                .await;
        }
        self.store.forgive_attempt(&key).await?;
        let session = self
            .store
            .record_second_factor(actor.session()?, method)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let token = presented.cloned().ok_or(AppError::Unauthenticated)?;
        Ok(LoggedIn {
            token,
            session,
            user: (*actor.user).clone(),
            mfa_methods: Vec::new(),
            must_enroll_mfa: false,
        })
    }

    /// Replace the caller's recovery codes; the new ones, shown this once.
    pub async fn regenerate_recovery_codes(&self, actor: &Actor) -> AppResult<Vec<String>> {
        if !actor.has_second_factor {
            return Err(AppError::Conflict(
                "Recovery codes come with a second factor: enrol one first.".to_owned(),
            ));
        }
        actor.require_recent_mfa()?;
        let txn = crate::db::begin_write(&self.db).await?;
        let codes = replace_recovery_codes(&txn, &self.secrets, actor).await?;
        audit::record(
            &txn,
            AuditEntry::by(actor, "mfa.recovery_codes_regenerated").target("User", actor.user_id),
        )
        .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Remove one of the caller's own authenticators. Removing the last one
    /// removes the recovery codes too.
    pub async fn remove_authenticator(&self, actor: &Actor, id: Uuid) -> AppResult<()> {
        actor.require_recent_mfa()?;
        let txn = crate::db::begin_write(&self.db).await?;
        let removed = actor
            .home()
            .delete_many::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::Id.eq(id))
            .filter(entity::authenticator::Column::UserId.eq(actor.user_id))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(AppError::NotFound("Authenticator"));
        }
        let left = actor
            .home()
            .find::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::UserId.eq(actor.user_id))
            .filter(entity::authenticator::Column::ConfirmedAt.is_not_null())
            .count(&txn)
            .await?;
        if left == 0 {
            actor
                .home()
                .delete_many::<entity::recovery_code::Entity>()
                .filter(entity::recovery_code::Column::UserId.eq(actor.user_id))
                .exec(&txn)
                .await?;
        }
        audit::record(
            &txn,
            AuditEntry::by(actor, "mfa.authenticator_removed").target("Authenticator", id),
        )
        .await?;
        txn.commit().await?;
        self.store.bump_user_epoch(actor.user_id).await?;
        Ok(())
    }

    /// Remove every second factor and recovery code of a user (USERS_WRITE,
    /// under the access rule, with a recent second factor of one's own) and end
    /// their sessions: they log in with their password alone, and enrol again
    /// where their organisation requires it.
    pub async fn reset_user_mfa(
        &self,
        actor: &Actor,
        user_id: Uuid,
    ) -> AppResult<entity::user::Model> {
        actor.require(Permission::UsersWrite)?;
        actor.require_recent_mfa()?;
        let txn = crate::db::begin_write(&self.db).await?;
        let user = users::find_manageable(&txn, actor, user_id).await?;
        let removed = actor
            .tenant()
            .delete_many::<entity::authenticator::Entity>()
            .filter(entity::authenticator::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        actor
            .tenant()
            .delete_many::<entity::recovery_code::Entity>()
            .filter(entity::recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            AuditEntry::by(actor, "user.reset_mfa")
                .target("User", user_id)
                .changes(serde_json::json!({ "authenticatorsRemoved": removed.rows_affected })),
        )
        .await?;
        // The sessions end before the commit: a store that cannot end them
        // changes nothing.
        self.store.revoke_user(user_id, None).await?;
        txn.commit().await?;
        self.store.bump_user_epoch(user_id).await?;
        Ok(user)
    }

    /// A wrong code: audited (the attempt was counted before it was judged).
    async fn wrong_code(&self, actor: &Actor) -> AppError {
        let recorded = audit::record(
            &self.db,
            AuditEntry::by(actor, "auth.mfa_failed").target("User", actor.user_id),
        )
        .await;
        if let Err(err) = recorded {
            return err;
        }
        events::login("mfa_failed");
        AppError::bad_input("code", "is not valid, or was already used")
    }
}

/// Accept `code` for a TOTP authenticator: it must match a step after the
/// last one accepted, and the step is stored in the same statement that
/// checks it, so a code is good once even when sent thirty times at once.
async fn use_totp(
    db: &impl ConnectionTrait,
    secrets: &SecretKey,
    authenticator: &entity::authenticator::Model,
    code: &str,
) -> AppResult<bool> {
    let secret = authenticator
        .secret
        .as_deref()
        .and_then(|sealed| secrets.open(sealed, authenticator.id.as_bytes()))
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "a TOTP secret does not open with the configured ROLLCALL_SECRET_KEY"
            ))
        })?;
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
    let last = authenticator
        .last_used_step
        .and_then(|s| u64::try_from(s).ok());
    let Some(step) = mfa::match_totp(&secret, code, now, last) else {
        return Ok(false);
    };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let updated = Scope::of(authenticator.organization_id)
        .update_many::<entity::authenticator::Entity>()
        .col_expr(
            entity::authenticator::Column::LastUsedStep,
            Expr::value(step),
        )
        .col_expr(
            entity::authenticator::Column::LastUsedAt,
            Expr::value(Utc::now()),
        )
        .filter(entity::authenticator::Column::Id.eq(authenticator.id))
        .filter(
            sea_orm::Condition::any()
                .add(entity::authenticator::Column::LastUsedStep.is_null())
                .add(entity::authenticator::Column::LastUsedStep.lt(step)),
        )
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Replace a user's recovery codes with ten new ones; the codes, this once.
async fn replace_recovery_codes(
    db: &impl ConnectionTrait,
    secrets: &SecretKey,
    actor: &Actor,
) -> AppResult<Vec<String>> {
    let user_id = actor.user_id;
    actor
        .home()
        .delete_many::<entity::recovery_code::Entity>()
        .filter(entity::recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let codes = mfa::new_recovery_codes();
    let now = Utc::now();
    entity::recovery_code::Entity::insert_many(codes.iter().map(|code| {
        entity::recovery_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            code_hash: Set(secrets.digest(&code.replace('-', ""))),
            used_at: Set(None),
            created_at: Set(now),
        }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(codes)
}

/// The confirmed authenticators of some users, oldest first.
pub async fn authenticators_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<entity::authenticator::Model>>> {
    let mut by_user: HashMap<Uuid, Vec<entity::authenticator::Model>> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(by_user);
    }
    for authenticator in scope
        .find::<entity::authenticator::Entity>()
        .filter(entity::authenticator::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(entity::authenticator::Column::ConfirmedAt.is_not_null())
        .order_by_asc(entity::authenticator::Column::CreatedAt)
        .all(db)
        .await?
    {
        by_user
            .entry(authenticator.user_id)
            .or_default()
            .push(authenticator);
    }
    Ok(by_user)
}

/// How many unused recovery codes each of some users holds (none listed: none).
pub async fn recovery_codes_left(
    db: &impl ConnectionTrait,
    scope: Scope,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, u64>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let counts: Vec<(Uuid, i64)> = scope
        .find::<entity::recovery_code::Entity>()
        .select_only()
        .column(entity::recovery_code::Column::UserId)
        .column_as(entity::recovery_code::Column::Id.count(), "left")
        .filter(entity::recovery_code::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(entity::recovery_code::Column::UsedAt.is_null())
        .group_by(entity::recovery_code::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(counts
        .into_iter()
        .map(|(user, left)| (user, u64::try_from(left).unwrap_or_default()))
        .collect())
}
