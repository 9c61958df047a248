//! Prometheus metrics: GraphQL requests by operation type and outcome, their
//! latency, database statements and the database pool; the product's own
//! counters (logins, imports, deliveries) are recorded by
//! [`telemetry::events`](crate::telemetry::events) and rendered here too.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::{
    IntoResponse, Request, Response, handler,
    http::{StatusCode, header},
    web::Data,
};
use sea_orm::DbBackend;
use subtle::ConstantTimeEq;

use crate::state::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed once (tests run several servers in one process).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .and_then(PrometheusBuilder::install_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
    })
}

/// Count one GraphQL request.
pub fn record_request(operation_type: &'static str, outcome: &'static str, seconds: f64) {
    metrics::counter!("rollcall_graphql_requests_total", "operation_type" => operation_type, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("rollcall_graphql_request_duration_seconds", "operation_type" => operation_type)
        .record(seconds);
}

/// Count one database statement (sea-orm's metric callback calls this).
pub fn record_query(info: &sea_orm::metric::Info<'_>) {
    let outcome = if info.failed { "error" } else { "ok" };
    metrics::counter!("rollcall_db_queries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("rollcall_db_query_duration_seconds").record(info.elapsed.as_secs_f64());
}

/// `/metrics` on the main address: only with the configured bearer token; not
/// found when none is configured (metrics then live on `--metrics-bind`, or
/// nowhere).
#[handler]
pub async fn guarded(req: &Request, state: Data<&AppState>) -> Response {
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Bearer")
            .finish();
    }
    render_text(&state).into_response()
}

/// `/metrics` on the separate metrics address.
#[handler]
pub async fn render(state: Data<&AppState>) -> String {
    render_text(&state)
}

fn render_text(state: &AppState) -> String {
    match state.db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = state.db.get_postgres_connection_pool();
            report_pool(pool.size(), pool.num_idle());
        }
        DbBackend::Sqlite => {
            let pool = state.db.get_sqlite_connection_pool();
            report_pool(pool.size(), pool.num_idle());
        }
        _ => {}
    }
    handle().render()
}

fn report_pool(size: u32, idle: usize) {
    let idle = idle as f64;
    metrics::gauge!("rollcall_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("rollcall_db_pool_connections", "state" => "in_use")
        .set(f64::from(size) - idle);
}
