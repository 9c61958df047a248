//! The caller of a request, and the tenant scope every data access goes through.
//!
//! An [`Actor`] is built once per request from a validated session: the user, the
//! organisation, and the permissions of the user's roles as they are now. Services
//! receive it and build every query through [`Actor::scope`], which filters by the
//! actor's organisation: a record of another organisation cannot be read or changed
//! by accident, and is indistinguishable from one that does not exist.
//!
//! An actor is a person through a session, or an API client through its token
//! ([`Credential`]). A client acts through its service account, so that what
//! it does is attributed like a person's; what only a person can do (their
//! own password, factors and sessions) asks [`Actor::session`] and is refused
//! to clients.

use std::{collections::BTreeSet, sync::Arc};

use sea_orm::Select;
use uuid::Uuid;

use super::{
    Permission,
    mfa::STEP_UP_WINDOW,
    session::{AuthMethod, SessionId, SessionToken},
};
use crate::{
    db::{InScope, Scope},
    error::{AppError, AppResult},
};

/// Where a request comes from, for sessions and the audit trail.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// What an actor authenticated with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A person's session.
    Session(SessionId),
    /// An API client's token; the client's id.
    ApiClient(Uuid),
    /// A scheduled import feed running with its creator's rights as they are
    /// now; the feed's id.
    Feed(Uuid),
}

/// An authenticated user acting through one session, or an API client
/// through its service account.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The person, or the client's service account.
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub credential: Credential,
    /// Shared with the instance's authorisation cache: no copy per request.
    pub permissions: Arc<BTreeSet<Permission>>,
    /// The user's record as of the session check: current, since any change
    /// to it replaces the user's epoch and the check then reads it again.
    pub user: Arc<entity::user::Model>,
    pub origin: Origin,
    /// How the session was made (and what it verified since).
    pub auth_methods: Vec<AuthMethod>,
    /// The login's password was right, its second factor is still to come.
    pub mfa_pending: bool,
    /// When a second factor was last verified on this session.
    pub mfa_verified_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The user has a second factor.
    pub has_second_factor: bool,
    /// The organisation's policy asks this user for a second factor and they
    /// have none: they must enrol before anything else.
    pub must_enroll_mfa: bool,
    /// Emergency access the user gave themselves, as it was when the request
    /// began (see [`Actor::emergency_access`]).
    pub break_glass: Option<Arc<BreakGlassAccess>>,
    /// The authorisation epoch of the session's organisation as the session
    /// check read it; none for an API client or a feed. See
    /// [`Actor::authz_epoch`].
    pub epoch: Option<OrganizationEpoch>,
}

/// An organisation's authorisation epoch: replaced by every change of its
/// roles, so that what an instance keeps of them is current while it stands.
#[derive(Clone, Debug)]
pub struct OrganizationEpoch {
    pub organization_id: Uuid,
    pub epoch: Arc<str>,
}

/// Emergency access: a "break glass" grant in force.
#[derive(Clone, Debug)]
pub struct BreakGlassAccess {
    pub grant_id: Uuid,
    /// The one patient it covers; every patient of the organisation when none.
    pub patient_id: Option<Uuid>,
    /// When it stops, whoever asks and whatever the caches hold.
    pub stops_at: chrono::DateTime<chrono::Utc>,
}

impl Actor {
    /// The session a person acts through; an API client has none, and is
    /// refused what only a person signed in may do.
    pub fn session(&self) -> AppResult<&SessionId> {
        match &self.credential {
            Credential::Session(id) => Ok(id),
            Credential::ApiClient(_) | Credential::Feed(_) => Err(AppError::forbidden(
                "An API client cannot do this: it is for a person signed in.",
            )),
        }
    }

    /// The emergency access the actor holds at this moment: none once its
    /// time is up, even within a request that began before.
    pub fn emergency_access(&self) -> Option<&BreakGlassAccess> {
        self.break_glass
            .as_deref()
            .filter(|access| chrono::Utc::now() < access.stops_at)
    }

    /// The authorisation epoch of the organisation the actor acts in, when
    /// the request read it: not for a super admin acting in another
    /// organisation than their session's, nor for a client or a feed.
    pub fn authz_epoch(&self) -> Option<&str> {
        self.epoch
            .as_ref()
            .filter(|e| e.organization_id == self.organization_id)
            .map(|e| &*e.epoch)
    }

    pub fn is_super_admin(&self) -> bool {
        self.user.is_super_admin
    }

    /// A generated or reset password: only `me`, `changePassword` and
    /// `logout` until it is changed.
    pub fn must_change_password(&self) -> bool {
        self.user.must_change_password
    }

    /// `Ok` when the session may do anything its permissions allow: not a
    /// login waiting for its second factor, not a user who must first change
    /// their password or enrol a second factor. Every door checks this.
    pub fn ensure_ready(&self) -> AppResult<()> {
        if self.mfa_pending {
            Err(AppError::MfaRequired)
        } else if self.must_change_password() {
            Err(AppError::PasswordChangeRequired)
        } else if self.must_enroll_mfa {
            Err(AppError::MfaEnrollmentRequired)
        } else {
            Ok(())
        }
    }

    /// A sensitive operation (see `auth::access`) by a user with a second
    /// factor needs one verified on this session within the last 15 minutes:
    /// otherwise `MFA_REQUIRED`, answered by `verifyMfa` on this session.
    pub fn require_recent_mfa(&self) -> AppResult<()> {
        let recent = self
            .mfa_verified_at
            .is_some_and(|at| chrono::Utc::now() - at < STEP_UP_WINDOW);
        if self.has_second_factor && !recent {
            Err(AppError::MfaRequired)
        } else {
            Ok(())
        }
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.is_super_admin() || self.permissions.contains(&permission)
    }

    /// `FORBIDDEN` unless the actor holds `permission`.
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "This needs the {} permission.",
                permission.as_str()
            )))
        }
    }

    /// What this actor may hand out, for the access rule.
    pub fn authority(&self) -> super::Authority {
        super::Authority::of(self)
    }

    pub fn require_super_admin(&self) -> AppResult<()> {
        if self.is_super_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("Only a super admin may do this."))
        }
    }

    /// The caller's organisation, where every statement over its records
    /// starts.
    pub fn tenant(&self) -> Scope {
        Scope::of(self.organization_id)
    }

    /// The organisation the actor's own account belongs to, where its second
    /// factors and recovery codes live: the one they act in, unless a super
    /// admin names another.
    pub fn home(&self) -> Scope {
        Scope::of(self.user.organization_id)
    }

    /// The caller's organisation's records of `E`.
    pub fn scope<E: InScope>(&self) -> Select<E> {
        self.tenant().find()
    }
}

/// The caller of a request as the GraphQL layer sees it: anonymous, or an actor.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub actor: Option<Actor>,
    pub origin: Origin,
    /// The token the request presented, when it opened a session: a step-up
    /// answers with it.
    pub token: Option<SessionToken>,
}

impl Caller {
    /// The actor, ready to act (see [`Actor::ensure_ready`]).
    pub fn actor(&self) -> AppResult<&Actor> {
        let actor = self.any_actor()?;
        actor.ensure_ready()?;
        Ok(actor)
    }

    /// A person while they set up their account: they may have to change
    /// their password or enrol a second factor, but have completed their
    /// login. `me`, `changePassword`, enrolment and `logout` use this.
    pub fn actor_in_setup(&self) -> AppResult<&Actor> {
        let actor = self.any_session()?;
        if actor.mfa_pending {
            return Err(AppError::MfaRequired);
        }
        Ok(actor)
    }

    /// The person of any live session, even a login waiting for its second
    /// factor: only completing that login and `logout` use this. API clients
    /// are refused: these are a person's own account.
    pub fn any_session(&self) -> AppResult<&Actor> {
        let actor = self.any_actor()?;
        actor.session()?;
        Ok(actor)
    }

    fn any_actor(&self) -> AppResult<&Actor> {
        self.actor.as_ref().ok_or(AppError::Unauthenticated)
    }

    /// The actor, holding `permission`.
    pub fn require(&self, permission: Permission) -> AppResult<&Actor> {
        let actor = self.actor()?;
        actor.require(permission)?;
        Ok(actor)
    }
}
