//! Every report output from one scan, and what changed since the previous
//! one: JSON, Markdown, HTML, JUnit, SARIF, OSCAL, CSV and Prometheus.
//!
//! ```text
//! cargo run -p compliance-examples --example report_outputs
//! ```

use std::sync::Arc;

use compliance_rs::k8s::ManifestCollector;
use compliance_rs::report::{Format, Report, builtin_frameworks};
use compliance_rs::{Engine, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut engine = Engine::new().with_collector(Arc::new(ManifestCollector::new([manifests.clone()])));
    for framework in builtin_frameworks() {
        engine = engine.with_framework(framework);
    }
    // A first run on the hardened workload only, then the whole folder.
    let first = Engine::new()
        .with_collector(Arc::new(ManifestCollector::new([manifests.join("payments-api.yaml")])))
        .run(&Scope::all())
        .await;
    let previous = Report::from_owned_run(first, engine.frameworks());
    let report =
        Report::from_owned_run(engine.run(&Scope::all()).await, engine.frameworks()).with_delta_from(&previous);

    let dir = std::env::temp_dir().join("compliance-report-outputs");
    for path in report.write_all(&Format::ALL, &dir)? {
        println!("{}", path.display());
    }
    for f in &report.frameworks {
        let failing: Vec<&str> =
            f.controls.iter().filter(|c| c.status.as_str() == "fail").map(|c| c.id.as_str()).collect();
        println!("{}: {} failing controls: {}", f.id, failing.len(), failing.join(", "));
    }
    if let Some(delta) = &report.delta {
        println!("{}", delta.summary_line());
    }
    println!("{}", report.summary_line());
    Ok(())
}
