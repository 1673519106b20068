//! Judge the bundled manifests, turn the results into Kubernetes
//! PolicyReports, and write them with server-side apply, as `compliance
//! monitor` does with `policy_reports: true`. By default they go to an
//! in-process test API server, and what it stored is printed; with
//! `--cluster`, to the cluster of your kubeconfig (nothing is deleted there).
//!
//! ```text
//! cargo run -p compliance-examples --example policy_reports [-- --cluster]
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use compliance_rs::k8s::{ManifestCollector, ReportPublisher};
use compliance_rs::report::{PolicyReportApi, Report, builtin_frameworks, policy_reports};
use compliance_rs::{Engine, Scope};
use compliance_test_support::kube_api::FakeApi;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut engine = Engine::new().with_collector(Arc::new(ManifestCollector::new([manifests])));
    for framework in builtin_frameworks() {
        engine = engine.with_framework(framework);
    }
    let report = Report::from_run(&engine.run(&Scope::all()).await, engine.frameworks());
    let api = PolicyReportApi::WgPolicy;
    let objects = policy_reports(&report, api);

    let (client, test_server) = match std::env::args().nth(1).as_deref() {
        Some("--cluster") => (kube::Client::try_default().await?, None),
        _ => {
            let server = FakeApi::default().start().await?;
            (server.client()?, Some(server))
        }
    };
    let publisher = ReportPublisher::new(client, api.api_version(), api.kind(), api.cluster_kind());
    // No pruning: this example must never delete a report a monitor wrote.
    let done = publisher.publish(&objects, false).await?;
    println!("{} reports applied, {} stale ones removed", done.applied, done.deleted);
    for object in &objects {
        let summary = &object["summary"];
        println!(
            "{} {}/{}: {} pass, {} fail, {} error, {} skip",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["namespace"].as_str().unwrap_or("-"),
            object["metadata"]["name"].as_str().unwrap_or_default(),
            summary["pass"],
            summary["fail"],
            summary["error"],
            summary["skip"]
        );
    }
    if let Some(server) = test_server {
        let namespace = objects[0]["metadata"]["namespace"].as_str().unwrap_or_default();
        let stored = server.api.get("policyreports", namespace, "compliance-rs").ok_or("not stored")?;
        println!(
            "the test API server holds {namespace}/compliance-rs with {} results",
            stored["results"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}
