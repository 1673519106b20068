//! Admission reviews.

use compliance_core::Severity;
use compliance_k8s::{AdmissionConfig, review};
use serde_json::{Value, json};

use crate::TestResult;

fn request(object: Value, operation: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b2a9f1c4-0000-4000-8000-000000000001",
            "kind": {"group": "apps", "version": "v1", "kind": object["kind"]},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "shop",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object,
        }
    })
}

fn deployment(container_security: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "labels": {"data-classification": "internal", "data-retention": "1y", "compliance-scope": "pci"}},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "api", "image": "api:1.0", "securityContext": container_security}]}}}})
}

#[test]
fn denies_high_severity_failures_and_warns_on_the_rest() -> TestResult {
    let answer = review(&request(deployment(json!({"privileged": true})), "CREATE"), &AdmissionConfig::default())?;
    let response = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(response["uid"], "b2a9f1c4-0000-4000-8000-000000000001");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().ok_or("no message")?;
    assert!(message.contains("k8s.container.privileged (critical)"), "{message}");
    assert!(message.contains("k8s.pod.run_as_non_root (high)"), "{message}");
    let warnings = response["warnings"].as_array().ok_or("no warnings")?;
    assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.starts_with("k8s.container.memory_limit (medium)"))));
    Ok(())
}

#[test]
fn a_hardened_deployment_is_allowed() -> TestResult {
    let sc = json!({"runAsNonRoot": true, "runAsUser": 10001, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
    let answer =
        review(&request(deployment(sc), "CREATE"), &AdmissionConfig::default().with_deny_severity(Severity::High))?;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    Ok(())
}

#[test]
fn warn_only_mode_never_denies() -> TestResult {
    let answer = review(
        &request(deployment(json!({"privileged": true})), "UPDATE"),
        &AdmissionConfig::default().warn_only(true),
    )?;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"]["warnings"].as_array().is_some_and(|w| !w.is_empty()));
    Ok(())
}

#[test]
fn other_kinds_and_deletes_are_allowed_and_malformed_bodies_are_errors() -> TestResult {
    let service =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
    assert_eq!(review(&request(service, "CREATE"), &AdmissionConfig::default())?["response"]["allowed"], true);
    let delete = request(deployment(json!({"privileged": true})), "DELETE");
    assert_eq!(review(&delete, &AdmissionConfig::default())?["response"]["allowed"], true);
    assert!(review(&json!({"kind": "Pod"}), &AdmissionConfig::default()).is_err());
    assert!(
        review(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}), &AdmissionConfig::default())
            .is_err()
    );
    let broken = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "nope"}});
    let answer = review(&request(broken, "CREATE"), &AdmissionConfig::default())?;
    assert_eq!(answer["response"]["allowed"], false);
    assert!(answer["response"]["status"]["message"].as_str().is_some_and(|m| m.contains("spec.containers")));
    Ok(())
}
