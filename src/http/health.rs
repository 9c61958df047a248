//! Liveness and readiness.

use poem::{
    IntoResponse, Response, handler,
    http::StatusCode,
    web::{Data, Json},
};
use serde_json::json;

use crate::state::AppState;

/// The process answers.
#[handler]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the session store answer; 503 naming what does not.
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(2);
    let database = matches!(
        tokio::time::timeout(timeout, state.db.ping()).await,
        Ok(Ok(()))
    );
    let store = matches!(
        tokio::time::timeout(timeout, state.auth.store().ping()).await,
        Ok(Ok(()))
    );
    let status = if database && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let describe = |ok: bool| if ok { "up" } else { "down" };
    Json(json!({
        "status": if database && store { "ready" } else { "unavailable" },
        "database": describe(database),
        "sessionStore": { "kind": state.auth.store().kind(), "status": describe(store) },
    }))
    .with_status(status)
    .into_response()
}
