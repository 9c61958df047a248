//! What every request shares, in a room of its own: the HTTP routes, the
//! GraphQL schema and the websocket all read it, and none of them owns it.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::{config::Config, services::auth::Authenticator};

/// What every request shares.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    pub config: Arc<Config>,
    /// Base of links in emails and the API.
    pub public_url: String,
    /// Wakes this instance's outbox worker when a message was queued.
    pub outbox_wake: Arc<Notify>,
    /// Wakes this instance's import runner when a job was queued.
    pub import_wake: Arc<Notify>,
    /// How requests to URLs organisations chose are made.
    pub outbound: Arc<crate::outbound::Outbound>,
    /// The organisations' roles as this instance last read them.
    pub roles: Arc<crate::services::roles::Catalog>,
}

impl AppState {
    /// What import feeds run with.
    pub fn feeds(&self) -> crate::import::feeds::Feeds {
        crate::import::feeds::Feeds {
            db: self.db.clone(),
            secrets: self.auth.secrets().clone(),
            outbound: self.outbound.clone(),
            max_bytes: self.config.max_upload_bytes,
            import_wake: self.import_wake.clone(),
        }
    }
}
