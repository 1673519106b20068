//! `compliance webhook`: the validating admission webhook over HTTPS, and
//! the monitor's metrics on `/metrics` on a listener of their own (plain
//! HTTP), so that the webhook's port serves only the API server.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use compliance_core::Run;
use compliance_k8s::webhook::{ServeLimits, TlsFiles, Webhook, WebhookConfig, serve_tls_with_limits};
use compliance_k8s::{AdmissionConfig, FailurePolicy};
use compliance_report::Report;

use crate::UsageError;
use crate::args::{FailurePolicyArg, WebhookArgs};

pub async fn run(args: WebhookArgs) -> Result<ExitCode, UsageError> {
    let mut k8s = compliance_k8s::K8sConfig::default();
    k8s.required_labels = args.k8s_required_labels.clone();
    k8s.rego_policies = args.rego_policies.clone();
    k8s.rego_eval_limit_ms = args.rego_eval_limit_ms;
    let (checks, policies) = compliance_k8s::K8sProvider::check_config(&k8s).map_err(|e| UsageError(e.to_string()))?;
    for gap in &policies.gaps {
        eprintln!("error: Rego policy not loaded: {}", gap.reason);
    }
    let scope = crate::scan::scope(&args.checks, &policies.checks)?;
    let failure_policy = match args.failure_policy {
        FailurePolicyArg::Fail => FailurePolicy::Fail,
        FailurePolicyArg::Ignore => FailurePolicy::Ignore,
    };
    let admission = AdmissionConfig::default()
        .with_deny_severity(args.deny_severity)
        .warn_only(args.warn_only)
        .with_scope(scope)
        .with_checks(checks)
        .with_failure_policy(failure_policy);
    let config = WebhookConfig::default()
        .with_admission(admission)
        .with_exempt_namespaces(args.exempt_namespaces.clone())
        .with_timeout(Duration::from_millis(args.timeout_ms.max(1)))
        .with_max_tracked_objects(args.max_tracked_objects.max(1));
    let mut files = TlsFiles::new(&args.tls_cert, &args.tls_key);
    if let Some(ca) = &args.client_ca {
        files = files.with_client_ca(ca);
    }
    let tls = files.server_config().map_err(|e| UsageError(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| UsageError(format!("--listen {}: {e}", args.listen)))?;
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| UsageError(format!("--metrics-listen {}: {e}", args.metrics_listen)))?;
    let webhook = Webhook::new(config);
    let metrics_app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(Arc::clone(&webhook));
    let stop = compliance_core::CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        signal.cancel();
    });
    let metrics_stop = stop.clone();
    let metrics_server = tokio::spawn(async move {
        axum::serve(metrics_listener, metrics_app).with_graceful_shutdown(metrics_stop.cancelled_owned()).await
    });
    eprintln!(
        "webhook listening on https://{} (POST /validate, GET /healthz{}); metrics on http://{}/metrics",
        args.listen,
        if args.client_ca.is_some() { "; client certificates required" } else { "" },
        args.metrics_listen
    );
    let limits = ServeLimits::default().with_max_connections(args.max_connections);
    serve_tls_with_limits(listener, webhook.router(), tls, limits, stop.clone().cancelled_owned())
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    stop.cancel();
    if let Ok(Err(e)) = metrics_server.await {
        eprintln!("error: metrics listener: {e}");
    }
    let stats = webhook.stats();
    eprintln!(
        "webhook stopped: {} allowed, {} denied, {} exempt, {} timed out, {} malformed",
        stats.allowed, stats.denied, stats.exempt, stats.timed_out, stats.malformed
    );
    Ok(ExitCode::SUCCESS)
}

/// The same metrics as the monitor, over the latest evidence per check and object.
async fn metrics(State(webhook): State<Arc<Webhook>>) -> impl IntoResponse {
    let run = Run::from_evidence(webhook.checks(), webhook.evidence());
    let report = Report::from_owned_run(run, &compliance_report::builtin_frameworks());
    match compliance_report::metrics::exposition(&report, webhook.stats().failures) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
