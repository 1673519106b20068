//! Judge the workloads of the cluster your kubeconfig points to, page by
//! page, and print a line per gap (a namespace you may not list, say).
//!
//! ```text
//! cargo run -p compliance-examples --example cluster_scan -- [namespace ...]
//! ```

use compliance_rs::k8s::{ClusterCollector, ClusterConfig};
use compliance_rs::{Collector, Scope, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("no cluster to scan ({e}); set KUBECONFIG or run inside a cluster");
            return Ok(());
        }
    };
    let namespaces: Vec<String> = std::env::args().skip(1).collect();
    let config = ClusterConfig::default().with_cluster("current").with_namespaces(namespaces).with_page_size(200);
    let collection = ClusterCollector::new(client, config).collect(&Scope::all()).await?;
    let failures = collection.evidence.iter().filter(|e| e.status == Status::Fail).count();
    println!("{} evidence, {failures} failures, {} gaps", collection.evidence.len(), collection.gaps.len());
    for gap in &collection.gaps {
        println!("gap: {}: {}", gap.source.as_deref().unwrap_or_default(), gap.reason);
    }
    Ok(())
}
