//! The validating admission webhook mounted in an existing axum service and
//! served over HTTPS: a self-signed certificate is generated for the demo
//! (use cert-manager's files in a cluster), then one `AdmissionReview` is
//! sent the way the API server sends it.
//!
//! ```text
//! cargo run -p compliance-examples --example admission_webhook
//! ```

use compliance_rs::k8s::webhook::{TlsFiles, Webhook, WebhookConfig, serve_tls};
use compliance_rs::k8s::{AdmissionConfig, FailurePolicy};
use compliance_test_support::tls::{TestCert, request};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dir = std::env::temp_dir().join(format!("compliance-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cert = TestCert::write(&dir);

    let webhook = Webhook::new(
        WebhookConfig::default()
            .with_admission(AdmissionConfig::default().with_failure_policy(FailurePolicy::Fail))
            .with_exempt_namespaces(["kube-system"]),
    );
    // Your service's own routes, with the webhook's merged in.
    let app = axum::Router::new()
        .route("/version", axum::routing::get(|| async { "my-service 1.0" }))
        .merge(webhook.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tls(listener, app, TlsFiles::new(&cert.cert, &cert.key).server_config()?, async {
        let _ = stopped.await;
    }));

    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "8a6c1f0e", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
                "spec": {"template": {"spec": {"hostNetwork": true,
                    "containers": [{"name": "api", "image": "registry.example.com/api:2.0"}]}}}}}
    });
    let response = request(addr, &cert.der, "POST", "/validate", &review.to_string()).await?;
    println!("HTTP {}: {}", response.status, response.body);
    let stats = webhook.stats();
    println!("allowed {}, denied {}", stats.allowed, stats.denied);

    let _ = stop.send(());
    server.await??;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
