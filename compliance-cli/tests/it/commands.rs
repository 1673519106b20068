//! Commands that need no input: version, listings, usage errors.

use serde_json::Value;

use crate::support::{TestResult, compliance, text};

#[test]
fn version_help_checks_and_frameworks() -> TestResult {
    let out = compliance(&["--version"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("compliance {}", env!("CARGO_PKG_VERSION")));

    let out = compliance(&["checks", "list"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(listing.contains("k8s.pod.run_as_non_root"), "{listing}");
    assert!(listing.lines().any(|l| l.starts_with("k8s.container.privileged") && l.contains("critical")));

    let out = compliance(&["checks", "list", "--format", "json"]);
    let checks: Value = serde_json::from_slice(&out.stdout)?;
    assert!(checks.as_array().is_some_and(|a| a.len() >= 24));

    assert!(compliance(&["frameworks", "list"]).status.success());
    assert_eq!(compliance(&["frameworks", "show", "no-such-framework"]).status.code(), Some(2));
    Ok(())
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["scan"][..],
        &["scan", "--k8s-manifests", "examples/manifests", "--format", "pdf"],
        &["scan", "--k8s-manifests", "examples/manifests", "--fail-on", "severe"],
        &["scan", "--k8s-manifests", "examples/manifests", "--check", "aws.nothing.*"],
        &["scan", "--k8s-manifests", "examples/manifests", "--framework", "hipaa"],
        &["no-such-command"],
    ] {
        let out = compliance(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).is_empty(), "{args:?} explains itself");
    }
}
