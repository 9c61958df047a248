//! The access rule: nobody gives what they do not hold.
//!
//! Permissions inside an organisation can only flow downhill. Whatever the door
//! (a mutation over HTTP or a websocket, an import row, later SCIM and API
//! clients), a change that could leave a user holding a permission passes one of
//! the two checks below, made on the [`Authority`] of whoever stands behind it:
//!
//! - [`Authority::ensure_may_grant`]: a role may be created, changed, deleted or
//!   given only when every permission it holds (before and after) is held by the
//!   caller;
//! - [`Authority::ensure_may_manage`]: a user may be changed (details, email,
//!   status, password, roles) only when every permission they hold is held by the
//!   caller, and a super admin only by a super admin.
//!
//! A super admin is above the rule. Nothing else is: holding USERS_WRITE or
//! ROLES_MANAGE is the right to manage *peers and juniors*, never seniors, so no
//! sequence of operations by non-super users can leave anyone with a permission
//! that none of those users held.
//!
//! Sensitive operations also ask the caller, when they have a second factor,
//! to have verified it on this session within 15 minutes
//! ([`Actor::require_recent_mfa`], `MFA_REQUIRED` otherwise): resetting another
//! user's password or second factors, creating, changing or deleting roles,
//! giving roles (by mutation or by an import that maps roles), changing the
//! organisation's second-factor policy or identity providers, creating API
//! clients, exporting people, and regenerating
//! one's recovery codes or removing a factor. A stolen session alone cannot
//! do them.

use std::{collections::BTreeSet, fmt, sync::Arc};

use uuid::Uuid;

use super::{Actor, Permission};
use crate::error::{AppError, FieldError};

/// What a caller may hand out: their permissions as of this request (or, for an
/// import job, as of this batch) and whether they are a super admin.
#[derive(Clone, Debug)]
pub struct Authority {
    super_admin: bool,
    permissions: Arc<BTreeSet<Permission>>,
}

/// Why the rule refused a change: the field it concerns and a sentence for the
/// caller. It becomes `FORBIDDEN` for a mutation and a failed row for an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        AppError::forbidden(refusal.message)
    }
}

impl From<Refusal> for FieldError {
    fn from(refusal: Refusal) -> Self {
        FieldError::new(refusal.field, refusal.message)
    }
}

impl Authority {
    pub fn new(super_admin: bool, permissions: Arc<BTreeSet<Permission>>) -> Self {
        Self {
            super_admin,
            permissions,
        }
    }

    /// Someone who may do nothing: a deactivated or deleted user.
    pub fn none() -> Self {
        Self::new(false, Arc::default())
    }

    pub fn of(actor: &Actor) -> Self {
        Self::new(actor.is_super_admin(), Arc::clone(&actor.permissions))
    }

    pub fn is_super_admin(&self) -> bool {
        self.super_admin
    }

    pub fn holds(&self, permission: Permission) -> bool {
        self.super_admin || self.permissions.contains(&permission)
    }

    /// A [`Refusal`] on `field` unless `permission` is held.
    pub fn require_for(&self, permission: Permission, field: &'static str) -> Result<(), Refusal> {
        if self.holds(permission) {
            Ok(())
        } else {
            Err(Refusal {
                field,
                message: format!("This needs the {} permission.", permission.as_str()),
            })
        }
    }

    /// The permissions of `wanted` that are held: what an API client may use
    /// of what it was given, bounded by its creator as they are now.
    pub fn bound(&self, wanted: &BTreeSet<Permission>) -> BTreeSet<Permission> {
        if self.super_admin {
            return wanted.clone();
        }
        wanted.intersection(&self.permissions).copied().collect()
    }

    /// The permissions of `wanted` that are not held.
    fn lacking<'a>(
        &self,
        wanted: impl IntoIterator<Item = &'a Permission>,
    ) -> BTreeSet<Permission> {
        if self.super_admin {
            return BTreeSet::new();
        }
        wanted
            .into_iter()
            .filter(|p| !self.permissions.contains(p))
            .copied()
            .collect()
    }

    /// A role (by `name`) holding `permissions` may be created, changed, deleted or
    /// given only by someone who holds all of them.
    pub fn ensure_may_grant(
        &self,
        name: &str,
        permissions: &BTreeSet<Permission>,
        field: &'static str,
    ) -> Result<(), Refusal> {
        let lacking = self.lacking(permissions);
        if lacking.is_empty() {
            return Ok(());
        }
        Err(Refusal {
            field,
            message: format!(
                "The role {name:?} holds {}, which you do not hold; nobody gives what they do not hold.",
                list(&lacking)
            ),
        })
    }

    /// A user may be changed only by someone who holds every permission the user
    /// holds; a super admin only by a super admin.
    pub fn ensure_may_manage(
        &self,
        target: &entity::user::Model,
        target_permissions: &BTreeSet<Permission>,
        field: &'static str,
    ) -> Result<(), Refusal> {
        if target.is_super_admin && !self.super_admin {
            return Err(Refusal {
                field,
                message: "Only a super admin may change a super admin.".to_owned(),
            });
        }
        let lacking = self.lacking(target_permissions);
        if lacking.is_empty() {
            return Ok(());
        }
        Err(Refusal {
            field,
            message: format!(
                "This user holds {}, which you do not hold: only someone holding every permission of a user may change them.",
                list(&lacking)
            ),
        })
    }
}

/// The union of the permissions of `roles`, looked up in `by_role`.
pub fn union_of<'a>(
    role_ids: impl IntoIterator<Item = &'a Uuid>,
    by_role: &std::collections::BTreeMap<Uuid, BTreeSet<Permission>>,
) -> BTreeSet<Permission> {
    role_ids
        .into_iter()
        .filter_map(|id| by_role.get(id))
        .flatten()
        .copied()
        .collect()
}

fn list(permissions: &BTreeSet<Permission>) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    fn authority(permissions: &[Permission]) -> Authority {
        Authority::new(false, Arc::new(permissions.iter().copied().collect()))
    }

    fn user(super_admin: bool) -> entity::user::Model {
        let now = chrono::Utc::now();
        entity::user::Model {
            id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            email: "someone@example.org".into(),
            password_hash: None,
            first_name: "Some".into(),
            last_name: "One".into(),
            title: None,
            status: "ACTIVE".into(),
            employee_status: "ACTIVE".into(),
            mobile_phone: None,
            locale: None,
            idle_timeout_minutes: None,
            external_id: None,
            must_change_password: false,
            is_super_admin: super_admin,
            last_login_at: None,
            created_at: now,
            updated_at: now,
            email_signature: None,
            preferences: None,
            service_account: false,
            user_name: None,
            employee_number: None,
            department: None,
            deprovisioned_at: None,
            reactivated_at: None,
            dormancy_warned_at: None,
        }
    }

    #[test]
    fn a_role_is_granted_only_with_every_permission_it_holds() {
        let caller = authority(&[RolesManage, UsersRead]);
        let within: BTreeSet<_> = [UsersRead].into();
        let beyond: BTreeSet<_> = [UsersRead, UsersWrite, AuditRead].into();
        assert!(
            caller
                .ensure_may_grant("Reader", &within, "roleIds")
                .is_ok()
        );
        let refusal = caller
            .ensure_may_grant("Everything", &beyond, "roleIds")
            .expect_err("refused");
        assert_eq!(refusal.field, "roleIds");
        assert!(refusal.message.contains("USERS_WRITE, AUDIT_READ"));
    }

    #[test]
    fn a_user_is_managed_only_by_someone_holding_all_their_permissions() {
        let caller = authority(&[UsersRead, UsersWrite]);
        let peer: BTreeSet<_> = [UsersRead, UsersWrite].into();
        let senior: BTreeSet<_> = [UsersRead, UsersWrite, RolesManage].into();
        assert!(caller.ensure_may_manage(&user(false), &peer, "id").is_ok());
        assert!(
            caller
                .ensure_may_manage(&user(false), &senior, "id")
                .is_err()
        );
    }

    #[test]
    fn only_a_super_admin_manages_a_super_admin() {
        let everything = authority(&Permission::ALL);
        assert!(
            everything
                .ensure_may_manage(&user(true), &BTreeSet::new(), "id")
                .is_err()
        );
        let super_admin = Authority::new(true, Arc::default());
        let all: BTreeSet<_> = Permission::ALL.into();
        assert!(
            super_admin
                .ensure_may_manage(&user(true), &all, "id")
                .is_ok()
        );
        assert!(super_admin.ensure_may_grant("All", &all, "id").is_ok());
    }

    #[test]
    fn nobody_inactive_holds_anything() {
        assert!(!Authority::none().holds(UsersRead));
    }
}
