//! What the product does, one file per area: plain async functions over a database
//! connection, domain types and the calling [`Actor`](crate::auth::Actor). No
//! async-graphql, no poem: a GraphQL mutation and an import row follow the same rules.

pub mod access_reviews;
pub mod accounts;
pub mod api_clients;
pub mod audit;
pub mod auth;
pub mod break_glass;
pub mod care_teams;
pub mod credentials;
pub mod dormancy;
pub mod holders;
pub mod invites;
pub mod leases;
pub mod locations;
pub mod mfa;
pub mod organizations;
pub mod outbox;
pub mod passkeys;
pub mod patients;
pub mod profiles;
pub mod projects;
pub mod providers;
pub mod roles;
pub mod sessions;
pub mod sso;
pub mod sweeps;
pub mod users;
pub mod webhook_events;
pub mod webhooks;

use crate::{auth::session::SessionStore, error::AppResult};

/// Commit a transaction that changes who may do what in an organisation
/// (roles given or taken, a role's permissions, a user's status).
///
/// The organisation's authorisation epoch is replaced before the commit, so
/// that a session store that cannot be reached fails the change instead of
/// letting it pass unseen, and again after it, so that an instance that read
/// the old rights between the two (under the new epoch) does not keep them.
pub async fn commit_authz_change<T>(
    txn: T,
    store: &dyn SessionStore,
    organization_id: uuid::Uuid,
) -> AppResult<()>
where
    T: sea_orm::TransactionSession,
{
    store.bump_authz_epoch(organization_id).await?;
    txn.commit().await?;
    store.bump_authz_epoch(organization_id).await?;
    Ok(())
}
