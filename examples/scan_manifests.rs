//! Judge a folder of Kubernetes manifests and print every failure, grouped
//! by workload, with the offending fields.
//!
//! ```text
//! cargo run -p compliance-examples --example scan_manifests -- examples/manifests
//! ```

use std::collections::BTreeMap;

use compliance_rs::k8s::ManifestCollector;
use compliance_rs::{Collector, Scope, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let path = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or(default);
    let collection = ManifestCollector::new([path]).collect(&Scope::all()).await?;

    let mut by_workload: BTreeMap<&str, Vec<&compliance_rs::Evidence>> = BTreeMap::new();
    for e in collection.evidence.iter().filter(|e| e.status == Status::Fail) {
        by_workload.entry(e.resource.id.as_str()).or_default().push(e);
    }
    for (workload, failures) in &by_workload {
        println!("{workload}");
        for e in failures {
            println!("  [{}] {}: {}", e.severity, e.check_id, e.message);
            for v in e.details["violations"].as_array().into_iter().flatten() {
                println!(
                    "      {} = {}  ({})",
                    v["field"].as_str().unwrap_or_default(),
                    v["value"],
                    v["problem"].as_str().unwrap_or_default()
                );
            }
        }
    }
    for gap in &collection.gaps {
        println!("not judged: {}: {}", gap.source.as_deref().unwrap_or_default(), gap.reason);
    }
    println!(
        "{} evidence, {} failures, {} gaps",
        collection.evidence.len(),
        by_workload.values().map(Vec::len).sum::<usize>(),
        collection.gaps.len()
    );
    Ok(())
}
