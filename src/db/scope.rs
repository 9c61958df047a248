//! The tenant scope: the one way to read, change or delete an organisation's
//! records.
//!
//! sea-orm lets any code write `Entity::find()`; `clippy.toml` refuses it (and
//! `find_by_id`, `update_many`, `delete_many`, `delete_by_id`) everywhere but
//! here, and CI runs clippy with warnings as errors. What is left:
//!
//! - [`Scope`]: statements over one organisation's records. Each entity says
//!   how its rows belong to an organisation ([`InScope`]): by a column of
//!   their own, or through the record that owns them (a role's permissions
//!   through the role, an import's rows through its job).
//! - [`global`]: statements over what belongs to no organisation (the
//!   organisations themselves, leases, sign-in ceremonies in flight).
//! - [`unscoped`]: statements over every organisation's records, for the
//!   work that is the system's rather than a caller's: workers and sweeps,
//!   and the steps of a sign-in before anyone is known. `tests/architecture.rs`
//!   names the files allowed to use it.
//!
//! Inserts carry their organisation in their values, and a loaded model
//! updates or deletes itself by its key; neither needs a scope.

use sea_orm::{
    ColumnTrait, Condition, DeleteMany, EntityTrait, Iterable, PrimaryKeyToColumn, PrimaryKeyTrait,
    QueryFilter, Select, UpdateMany,
    sea_query::{Expr, ExprTrait, IntoValueTuple, Query},
};
use uuid::Uuid;

/// Entities whose rows belong to an organisation.
pub trait InScope: EntityTrait {
    /// What keeps a statement to `organization_id`'s rows.
    fn in_organization(organization_id: Uuid) -> Condition;
}

/// Entities that belong to no organisation.
pub trait Global: EntityTrait {}

/// One organisation's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    organization_id: Uuid,
}

impl Scope {
    #[must_use]
    pub const fn of(organization_id: Uuid) -> Self {
        Self { organization_id }
    }

    #[must_use]
    pub const fn organization_id(self) -> Uuid {
        self.organization_id
    }

    /// The organisation's records of `E`.
    #[allow(clippy::disallowed_methods)]
    pub fn find<E: InScope>(self) -> Select<E> {
        E::find().filter(E::in_organization(self.organization_id))
    }

    /// The record of `E` with this key, if it is the organisation's.
    #[allow(clippy::disallowed_methods)]
    pub fn find_by_id<E: InScope>(
        self,
        id: impl Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    ) -> Select<E> {
        E::find_by_id(id).filter(E::in_organization(self.organization_id))
    }

    /// A deletion of the organisation's record of `E` with this key, if it is
    /// the organisation's.
    pub fn delete_by_id<E: InScope>(
        self,
        id: impl Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    ) -> DeleteMany<E> {
        let mut delete = self.delete_many::<E>();
        let mut key = E::PrimaryKey::iter();
        for value in id.into().into_value_tuple() {
            if let Some(column) = key.next() {
                delete = delete.filter(column.into_column().eq(value));
            }
        }
        delete
    }

    /// An update of the organisation's records of `E`; filter it further.
    #[allow(clippy::disallowed_methods)]
    pub fn update_many<E: InScope>(self) -> UpdateMany<E> {
        E::update_many().filter(E::in_organization(self.organization_id))
    }

    /// A deletion of the organisation's records of `E`; filter it further.
    #[allow(clippy::disallowed_methods)]
    pub fn delete_many<E: InScope>(self) -> DeleteMany<E> {
        E::delete_many().filter(E::in_organization(self.organization_id))
    }

    /// The organisation itself.
    #[allow(clippy::disallowed_methods)]
    pub fn organization(self) -> Select<entity::organization::Entity> {
        entity::organization::Entity::find_by_id(self.organization_id)
    }

    /// Every account that may act in the organisation: its own (service
    /// accounts included) and super admins of any organisation, who may act
    /// in every one. Who started an import, a feed or a review, and who a
    /// record says acted, are found here.
    #[allow(clippy::disallowed_methods)]
    pub fn actors(self) -> Select<entity::user::Entity> {
        use entity::user::Column;
        entity::user::Entity::find().filter(
            Condition::any()
                .add(Column::OrganizationId.eq(self.organization_id))
                .add(Column::IsSuperAdmin.eq(true)),
        )
    }

    /// Every account of the organisation: its people and the service
    /// accounts its API clients act through, which `find::<user::Entity>`
    /// leaves out.
    #[allow(clippy::disallowed_methods)]
    pub fn accounts(self) -> Select<entity::user::Entity> {
        entity::user::Entity::find()
            .filter(entity::user::Column::OrganizationId.eq(self.organization_id))
    }
}

/// Statements over what belongs to no organisation: [`unscoped`]'s, for
/// the entities that are [`Global`] only.
pub mod global {
    use super::{DeleteMany, Global, PrimaryKeyTrait, Select, UpdateMany, unscoped};

    pub fn find<E: Global>() -> Select<E> {
        unscoped::find()
    }

    pub fn find_by_id<E: Global>(
        id: impl Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    ) -> Select<E> {
        unscoped::find_by_id(id)
    }

    pub fn update_many<E: Global>() -> UpdateMany<E> {
        unscoped::update_many()
    }

    pub fn delete_many<E: Global>() -> DeleteMany<E> {
        unscoped::delete_many()
    }
}

/// Statements over every organisation's records: the system's own work
/// (workers, sweeps, the outbox, the audit chain's forwarding) and the steps
/// of a sign-in before its organisation is known (a login's email, a session's
/// user, an SSO subject, an API client's token). Only the files that
/// `tests/architecture.rs` names may use these; each use says why.
pub mod unscoped {
    use super::{DeleteMany, EntityTrait, PrimaryKeyTrait, Select, UpdateMany};

    #[allow(clippy::disallowed_methods)]
    pub fn find<E: EntityTrait>() -> Select<E> {
        E::find()
    }

    #[allow(clippy::disallowed_methods)]
    pub fn find_by_id<E: EntityTrait>(
        id: impl Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    ) -> Select<E> {
        E::find_by_id(id)
    }

    #[allow(clippy::disallowed_methods)]
    pub fn update_many<E: EntityTrait>() -> UpdateMany<E> {
        E::update_many()
    }

    #[allow(clippy::disallowed_methods)]
    pub fn delete_many<E: EntityTrait>() -> DeleteMany<E> {
        E::delete_many()
    }
}

/// Entities with an `organization_id` column of their own.
macro_rules! by_column {
    ($($entity:ident),* $(,)?) => {$(
        impl InScope for entity::$entity::Entity {
            fn in_organization(organization_id: Uuid) -> Condition {
                Condition::all().add(entity::$entity::Column::OrganizationId.eq(organization_id))
            }
        }
    )*};
}

by_column!(
    access_review,
    api_client,
    audit_event,
    authenticator,
    availability_slot,
    break_glass_grant,
    certification,
    enrollment,
    identity_provider,
    import_feed,
    import_job,
    location,
    mapping_template,
    outbox_message,
    patient,
    patient_assignment,
    project,
    provider,
    role,
    webhook,
);

/// The organisation's people. The service accounts through which API clients
/// act are nobody's staff: no list, lookup or change of people reaches them
/// (see [`Scope::accounts`]).
impl InScope for entity::user::Entity {
    fn in_organization(organization_id: Uuid) -> Condition {
        use entity::user::Column;
        Condition::all()
            .add(Column::OrganizationId.eq(organization_id))
            .add(Column::ServiceAccount.eq(false))
    }
}

/// Entities whose rows belong to a record of another: `column` names the
/// owner, whose own `organization_id` decides (for a user's rows, service
/// accounts included). A role's holders go through the role: an organisation
/// has a few roles and many people.
macro_rules! through_owner {
    ($($entity:ident . $column:ident => $owner:ident),* $(,)?) => {$(
        impl InScope for entity::$entity::Entity {
            fn in_organization(organization_id: Uuid) -> Condition {
                // Named with their tables: the statement may join others
                // with columns of the same names.
                Condition::all().add(
                    Expr::col((entity::$entity::Entity, entity::$entity::Column::$column))
                        .in_subquery(
                            Query::select()
                                .column((entity::$owner::Entity, entity::$owner::Column::Id))
                                .from(entity::$owner::Entity)
                                .and_where(
                                    Expr::col((
                                        entity::$owner::Entity,
                                        entity::$owner::Column::OrganizationId,
                                    ))
                                    .eq(organization_id),
                                )
                                .to_owned(),
                        ),
                )
            }
        }
    )*};
}

through_owner!(
    access_review_item.ReviewId => access_review,
    certification_reminder.CertificationId => certification,
    import_file.JobId => import_job,
    import_file_chunk.JobId => import_job,
    import_row.JobId => import_job,
    invite.UserId => user,
    patient_link.ProjectId => project,
    recovery_code.UserId => user,
    role_permission.RoleId => role,
    sso_identity.UserId => user,
    user_role.RoleId => role,
);

macro_rules! global {
    ($($entity:ident),* $(,)?) => {$(
        impl Global for entity::$entity::Entity {}
    )*};
}

global!(
    organization,
    lease,
    sso_login,
    webauthn_ceremony,
    audit_chain,
    audit_forwarded,
);
