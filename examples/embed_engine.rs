//! Embedding compliance-rs in a service: your own collector next to the
//! built-in manifest collector, a framework of your own, waivers, and the
//! JSON report.
//!
//! ```text
//! cargo run -p compliance-examples --example embed_engine
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use compliance_rs::k8s::ManifestCollector;
use compliance_rs::report::Report;
use compliance_rs::{
    Check, Collection, Collector, Control, Engine, EngineConfig, Evidence, FrameworkDef, ResourceRef, Scope, Severity,
    Status, Waiver,
};

/// A collector of your own: here, TLS certificates and their expiry.
struct CertificateCollector {
    check: Check,
}

impl CertificateCollector {
    fn new() -> compliance_rs::Result<Self> {
        let check = Check::new(
            "acme.tls.certificate_expiry",
            "Certificates are valid for 30 days or more",
            Severity::High,
            "Certificate",
        )?
        .with_rationale("An expired certificate takes the service down and trains users to click through warnings.")
        .with_remediation("Renew the certificate, or fix the renewal job.");
        Ok(Self { check })
    }
}

#[async_trait]
impl Collector for CertificateCollector {
    fn name(&self) -> &str {
        "acme-certificates"
    }

    fn checks(&self) -> Vec<Check> {
        vec![self.check.clone()]
    }

    async fn collect(&self, scope: &Scope) -> compliance_rs::Result<Collection> {
        if !scope.wants(&self.check.id) {
            return Ok(Collection::default());
        }
        // A real collector would read the certificates; these are fixed.
        let certificates = [("api.example.com", 210), ("legacy.example.com", 12)];
        let evidence = certificates
            .iter()
            .map(|(host, days)| {
                let resource = ResourceRef::new("acme", "Certificate", format!("tls/{host}"), *host);
                let status = if *days >= 30 { Status::Pass } else { Status::Fail };
                Evidence::new(&self.check, resource, status, format!("{host} expires in {days} days"))
                    .with_details(serde_json::json!({ "days_left": days }))
            })
            .collect::<Vec<_>>();
        Ok(evidence.into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let framework = FrameworkDef::new(
        "acme-baseline",
        "ACME security baseline",
        "2026.1",
        vec![
            Control::new("ACME-1", "Workloads do not run as root", vec!["k8s.pod.run_as_non_root".parse()?]),
            Control::new("ACME-2", "Certificates are renewed in time", vec!["acme.tls.certificate_expiry".parse()?]),
        ],
    );
    let waiver = Waiver::new(
        "ACME-RISK-7",
        "acme.tls.certificate_expiry",
        "tls/legacy.example.com",
        "Host is decommissioned on the 15th",
        "ops@example.com",
        chrono::Utc::now() + chrono::Duration::days(14),
    );
    let engine = Engine::new()
        .with_config(EngineConfig::default().with_concurrency(2).with_collector_timeout(Duration::from_secs(30)))
        .with_collector(Arc::new(CertificateCollector::new()?))
        .with_collector(Arc::new(ManifestCollector::new([manifests])))
        .with_framework(Arc::new(framework))
        .with_waivers([waiver]);

    let run = engine.run(&Scope::all()).await;
    let report = Report::from_run(&run, engine.frameworks());
    for control in &report.frameworks[0].controls {
        println!("{} {:<40} {}", control.id, control.title, control.status.as_str());
    }
    let dir = std::env::temp_dir().join("compliance-embed-example");
    println!("report: {}", report.write_json(&dir)?.display());
    println!("{}", report.summary_line());
    Ok(())
}
