//! Rego policies as checks: load the example policy
//! (`examples/policies/soc2-workloads.rego`), judge manifests and an
//! admission request with it next to the built-in checks.
//!
//! ```text
//! cargo run -p compliance-examples --example rego_policies
//! ```

use compliance_rs::k8s::{AdmissionConfig, CheckConfig, RegoConfig, RegoPolicies, review, scan_paths};
use compliance_rs::{Scope, Status};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // Compile once; evaluate many objects. A policy that does not compile is reported, the others load.
    let (policies, errors) = RegoPolicies::load(&[root.join("policies")], &RegoConfig::default());
    for e in &errors {
        eprintln!("not loaded: {e}");
    }
    for p in policies.policies() {
        println!("{} ({:?}, {}): {}", p.check().id, p.syntax(), p.check().severity, p.source());
    }

    let config = CheckConfig::default().with_policies(policies);
    let scope = Scope::only(["rego.*", "k8s.workload.required_labels"]);
    let collection = scan_paths(&[root.join("manifests")], &config, &scope);
    for e in collection.evidence.iter().filter(|e| e.status == Status::Fail) {
        println!("{:<32} {:<16} {}", e.check_id, e.resource.name, e.message);
    }

    let request = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "1d2c3b4a", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"securityContext": {"runAsNonRoot": true},
                         "containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    });
    let answer = review(&request, &AdmissionConfig::default().with_scope(Scope::only(["rego.*"])).with_checks(config))?;
    println!("admission: {}", serde_json::to_string_pretty(&answer["response"])?);
    Ok(())
}
