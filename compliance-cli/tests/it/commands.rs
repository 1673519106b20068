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

#[test]
fn reading_a_store_that_is_not_there_is_an_error_and_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("evidnce.db");
    let url = format!("sqlite://{}", missing.display());
    for args in [["evidence", "verify", "--store", url.as_str()], ["evidence", "runs", "--store", url.as_str()]] {
        let out = compliance(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stdout));
        assert!(text(&out.stderr).contains("--store: store unavailable"), "{}", text(&out.stderr));
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // A database that is not an evidence store is refused too, and left as it was.
    let other = dir.path().join("other.db");
    std::fs::write(&other, "")?;
    let out = compliance(&["evidence", "verify", "--store", &format!("sqlite://{}", other.display())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no evidence store there"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&other)?.len(), 0);
    Ok(())
}

#[test]
fn a_store_file_that_is_not_a_database_is_tampering_at_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let garbage = dir.path().join("evidence.db");
    std::fs::write(&garbage, vec![b'x'; 64 * 1024])?;
    let url = format!("sqlite://{}", garbage.display());
    let out = compliance(&["evidence", "verify", "--store", &url]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("TAMPERED: store damaged"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("not a database"), "the driver's reason: {}", text(&out.stdout));
    // Other read commands report it as an unusable store (exit 2), naming the damage.
    let out = compliance(&["evidence", "runs", "--store", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("store damaged"), "{}", text(&out.stderr));
    Ok(())
}
