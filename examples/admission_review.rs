//! Answer a Kubernetes `AdmissionReview` with the built-in checks: the
//! function a validating webhook calls.
//!
//! ```text
//! cargo run -p compliance-examples --example admission_review
//! ```

use compliance_rs::Severity;
use compliance_rs::k8s::{AdmissionConfig, review};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let request = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c9a52-1b6e-4d3a-9c1e-2d8f7a6b5c4d",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "deployer"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "checkout"},
                "spec": {"containers": [{"name": "checkout", "image": "shop/checkout:5.2",
                    "securityContext": {"allowPrivilegeEscalation": true}}]}
            }
        }
    });
    let enforce = review(&request, &AdmissionConfig::default().with_deny_severity(Severity::High))?;
    println!("enforcing:\n{}", serde_json::to_string_pretty(&enforce["response"])?);
    let audit = review(&request, &AdmissionConfig::default().warn_only(true))?;
    println!("warn-only: allowed = {}", audit["response"]["allowed"]);
    Ok(())
}
