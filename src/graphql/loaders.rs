//! DataLoaders for every relation, so a list of N users costs two queries, not N+1.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;
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
