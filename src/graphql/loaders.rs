//! DataLoaders for every relation, so a list of N users costs two queries, not N+1.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{auth::Permission, services::roles};

pub struct RolesOfUser(pub DatabaseConnection);

impl Loader<Uuid> for RolesOfUser {
    type Value = Vec<entity::role::Model>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(roles::roles_by_user(&self.0, keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .collect())
    }
}

/// The roles each user holds that are suspended now: a certification they
/// require is missing or expired.
pub struct SuspendedRolesOfUser(pub DatabaseConnection);

impl Loader<Uuid> for SuspendedRolesOfUser {
    type Value = Vec<entity::role::Model>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(crate::services::credentials::suspended_roles(&self.0, keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|(user, (_, roles))| (user, roles))
            .collect())
    }
}

pub struct PermissionsOfRole(pub DatabaseConnection);

impl Loader<Uuid> for PermissionsOfRole {
    type Value = BTreeSet<Permission>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(roles::permissions_by_role(&self.0, keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .collect())
    }
}

/// Loader errors are shared between the fields that asked; give each its own copy.
pub fn loader_error(err: Arc<crate::error::AppError>) -> crate::error::AppError {
    match Arc::try_unwrap(err) {
        Ok(err) => err,
        Err(shared) => match &*shared {
            crate::error::AppError::Unavailable(what) => crate::error::AppError::Unavailable(what),
            other => crate::error::AppError::Internal(anyhow::anyhow!("{other}")),
        },
    }
}

/// Users by id. Callers that may see another organisation's ids filter the result.
pub struct UserById(pub DatabaseConnection);

impl Loader<Uuid> for UserById {
    type Value = entity::user::Model;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let users = entity::user::Entity::find()
            .filter(entity::user::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// The provider record of each user, if they have one.
pub struct ProviderOfUser(pub DatabaseConnection);

impl Loader<Uuid> for ProviderOfUser {
    type Value = entity::provider::Model;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let providers = entity::provider::Entity::find()
            .filter(entity::provider::Column::UserId.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(providers.into_iter().map(|p| (p.user_id, p)).collect())
    }
}

/// Records of one table by their UUID primary key: patients of enrolments,
/// outbox messages of requests.
pub struct ById<E>(pub DatabaseConnection, std::marker::PhantomData<E>);

impl<E> ById<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db, std::marker::PhantomData)
    }
}

impl<E> Loader<Uuid> for ById<E>
where
    E: EntityTrait + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        use sea_orm::{Iterable, ModelTrait, PrimaryKeyToColumn, Value};
        let Some(key) = E::PrimaryKey::iter()
            .next()
            .map(PrimaryKeyToColumn::into_column)
        else {
            return Ok(HashMap::new());
        };
        let models = E::find()
            .filter(key.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(models
            .into_iter()
            .filter_map(|m| match m.get(key) {
                Value::Uuid(Some(id)) => Some((id, m)),
                _ => None,
            })
            .collect())
    }
}

/// The users under review in each access review.
pub struct ItemsOfReview(pub DatabaseConnection);

impl Loader<Uuid> for ItemsOfReview {
    type Value = Vec<entity::access_review_item::Model>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::access_reviews::items_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The staff users each patient is assigned to.
pub struct CareTeamOfPatient(pub DatabaseConnection);

impl Loader<Uuid> for CareTeamOfPatient {
    type Value = Vec<Uuid>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::care_teams::care_teams(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The certifications of each user.
pub struct CertificationsOfUser(pub DatabaseConnection);

impl Loader<Uuid> for CertificationsOfUser {
    type Value = Vec<entity::certification::Model>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::profiles::certifications_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The weekly availability of each user.
pub struct AvailabilityOfUser(pub DatabaseConnection);

impl Loader<Uuid> for AvailabilityOfUser {
    type Value = Vec<entity::availability_slot::Model>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::profiles::availability_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The figures of each project: one grouped count for a page of projects.
pub struct StatsOfProject(pub DatabaseConnection);

impl Loader<Uuid> for StatsOfProject {
    type Value = crate::services::projects::ProjectStats;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::projects::stats_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The confirmed second factors of each user.
pub struct AuthenticatorsOfUser(pub DatabaseConnection);

impl Loader<Uuid> for AuthenticatorsOfUser {
    type Value = Vec<entity::authenticator::Model>;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::mfa::authenticators_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// How many unused recovery codes each user holds.
pub struct RecoveryCodesLeft(pub DatabaseConnection);

impl Loader<Uuid> for RecoveryCodesLeft {
    type Value = u64;
    type Error = Arc<crate::error::AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::services::mfa::recovery_codes_left(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}
