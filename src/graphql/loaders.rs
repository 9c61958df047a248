//! DataLoaders for every relation, so a list of N users costs two queries, not N+1.
//!
//! The loaders are the schema's, shared by every request; each key names the
//! organisation of the request that asks ([`Key`]), and each batch reads only
//! that organisation's records. One organisation's request cannot load
//! another's, whatever id it holds.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter};
use uuid::Uuid;

use crate::{
    auth::Permission,
    db::{InScope, Scope},
    error::{AppError, AppResult},
    services::{access_reviews, audit, care_teams, credentials, mfa, profiles, projects, roles},
};

/// A record's id within the organisation whose request asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub scope: Scope,
    pub id: Uuid,
}

impl Key {
    pub const fn new(scope: Scope, id: Uuid) -> Self {
        Self { scope, id }
    }

    /// `id` within the organisation `organization_id`: a record's relation
    /// keyed by the record's own organisation.
    pub const fn within(organization_id: Uuid, id: Uuid) -> Self {
        Self::new(Scope::of(organization_id), id)
    }
}

/// The ids of `keys` by the organisation asking: a request asks within
/// one, so a batch is nearly always one statement.
fn by_scope(keys: &[Key]) -> BTreeMap<Scope, Vec<Uuid>> {
    let mut ids: BTreeMap<Scope, Vec<Uuid>> = BTreeMap::new();
    for key in keys {
        ids.entry(key.scope).or_default().push(key.id);
    }
    ids
}

/// A loader over the schema's connection: `$name` gives each key its
/// `$value` by `$load(db, scope, ids)`, an organisation at a time.
macro_rules! loader {
    ($(#[$doc:meta])* $name:ident => $value:ty, $load:path) => {
        $(#[$doc])*
        pub struct $name(pub DatabaseConnection);

        impl Loader<Key> for $name {
            type Value = $value;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[Key]) -> Result<HashMap<Key, $value>, Self::Error> {
                let mut found = HashMap::with_capacity(keys.len());
                for (scope, ids) in by_scope(keys) {
                    let loaded = $load(&self.0, scope, &ids).await.map_err(Arc::new)?;
                    found.extend(loaded.into_iter().map(|(id, v)| (Key::new(scope, id), v)));
                }
                Ok(found)
            }
        }
    };
}

loader!(
    /// The roles each user holds.
    RolesOfUser => Vec<entity::role::Model>,
    roles::roles_by_user
);

loader!(
    /// The roles each user holds that are suspended now: a certification
    /// they require is missing or expired.
    SuspendedRolesOfUser => Vec<entity::role::Model>,
    suspended_roles
);

async fn suspended_roles(
    db: &DatabaseConnection,
    scope: Scope,
    ids: &[Uuid],
) -> AppResult<impl IntoIterator<Item = (Uuid, Vec<entity::role::Model>)>> {
    Ok(credentials::suspended_roles(db, scope, ids)
        .await?
        .into_iter()
        .map(|(user, (_, roles))| (user, roles)))
}

loader!(
    /// The permissions of each role.
    PermissionsOfRole => BTreeSet<Permission>,
    roles::permissions_by_role
);

loader!(
    /// Every account by id, service accounts included (an API client acts
    /// through one, and the audit trail names it).
    UserById => entity::user::Model,
    users_by_id
);

async fn users_by_id(
    db: &DatabaseConnection,
    scope: Scope,
    ids: &[Uuid],
) -> AppResult<impl IntoIterator<Item = (Uuid, entity::user::Model)>> {
    let users = scope
        .accounts()
        .filter(entity::user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(users.into_iter().map(|u| (u.id, u)))
}

loader!(
    /// The people a record of the organisation names: its own, and super
    /// admins who acted in it.
    PeopleInTrail => entity::user::Model,
    audit::people_in_trail
);

loader!(
    /// The provider record of each user, if they have one.
    ProviderOfUser => entity::provider::Model,
    providers_of
);

async fn providers_of(
    db: &DatabaseConnection,
    scope: Scope,
    ids: &[Uuid],
) -> AppResult<impl IntoIterator<Item = (Uuid, entity::provider::Model)>> {
    let providers = scope
        .find::<entity::provider::Entity>()
        .filter(entity::provider::Column::UserId.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(providers.into_iter().map(|p| (p.user_id, p)))
}

loader!(
    /// The users under review in each access review.
    ItemsOfReview => Vec<entity::access_review_item::Model>,
    access_reviews::items_of
);

loader!(
    /// The staff users each patient is assigned to.
    CareTeamOfPatient => Vec<Uuid>,
    care_teams::care_teams
);

loader!(
    /// The certifications of each user.
    CertificationsOfUser => Vec<entity::certification::Model>,
    profiles::certifications_of
);

loader!(
    /// The weekly availability of each user.
    AvailabilityOfUser => Vec<entity::availability_slot::Model>,
    profiles::availability_of
);

loader!(
    /// The figures of each project: one grouped count for a page of projects.
    StatsOfProject => projects::ProjectStats,
    projects::stats_of
);

loader!(
    /// The confirmed second factors of each user.
    AuthenticatorsOfUser => Vec<entity::authenticator::Model>,
    mfa::authenticators_of
);

loader!(
    /// How many unused recovery codes each user holds.
    RecoveryCodesLeft => u64,
    mfa::recovery_codes_left
);

/// Records of one table by their UUID primary key: patients of enrolments,
/// outbox messages of requests, roles, locations.
pub struct ById<E>(pub DatabaseConnection, std::marker::PhantomData<E>);

impl<E> ById<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db, std::marker::PhantomData)
    }
}

impl<E> Loader<Key> for ById<E>
where
    E: InScope + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Key]) -> Result<HashMap<Key, Self::Value>, Self::Error> {
        use sea_orm::{Iterable, ModelTrait, PrimaryKeyToColumn, Value};
        let Some(key) = E::PrimaryKey::iter()
            .next()
            .map(PrimaryKeyToColumn::into_column)
        else {
            return Ok(HashMap::new());
        };
        let mut found = HashMap::with_capacity(keys.len());
        for (scope, ids) in by_scope(keys) {
            let models = scope
                .find::<E>()
                .filter(key.is_in(ids))
                .all(&self.0)
                .await
                .map_err(|e| Arc::new(e.into()))?;
            found.extend(models.into_iter().filter_map(|m| match m.get(key) {
                Value::Uuid(Some(id)) => Some((Key::new(scope, id), m)),
                _ => None,
            }));
        }
        Ok(found)
    }
}

/// Loader errors are shared between the fields that asked; give each its own copy.
pub fn loader_error(err: Arc<AppError>) -> AppError {
    match Arc::try_unwrap(err) {
        Ok(err) => err,
        Err(shared) => match &*shared {
            AppError::Unavailable(what) => AppError::Unavailable(what),
            other => AppError::Internal(anyhow::anyhow!("{other}")),
        },
    }
}
