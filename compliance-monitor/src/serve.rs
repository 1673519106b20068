//! What the monitor serves: `/metrics` (OpenMetrics, from the latest run)
//! and `/healthz`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use compliance_report::Report;
use tokio::sync::RwLock;

/// What `/metrics` and `/healthz` show.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) report: Option<Report>,
    pub(crate) violations_total: u64,
    pub(crate) last_evidence: BTreeMap<String, i64>,
    pub(crate) last_cycle_error: Option<String>,
    pub(crate) cycles: u64,
}

pub(crate) type SharedState = Arc<RwLock<Shared>>;

/// The router of `/metrics` and `/healthz` over the monitor's state.
pub(crate) fn router(state: SharedState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(healthz))
        .with_state(state)
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    let shared = state.read().await;
    let Some(report) = &shared.report else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no run yet".to_owned()).into_response();
    };
    match compliance_report::metrics::exposition_with_history(report, shared.violations_total, &shared.last_evidence) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(State(state): State<SharedState>) -> impl IntoResponse {
    let shared = state.read().await;
    match &shared.last_cycle_error {
        // Still serving: the error is in the body and the metrics, not a reason to restart the process.
        Some(e) => (StatusCode::OK, format!("ok (cycles: {}; last cycle: {e})", shared.cycles)),
        None => (StatusCode::OK, format!("ok (cycles: {})", shared.cycles)),
    }
}
