//! Report outputs: every format in one scan, and the changes since a previous report.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{TestResult, compliance, repo, report_in, text};

#[test]
fn previous_report_gives_the_changes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests)?;
    std::fs::copy(repo().join("examples/manifests/payments-api.yaml"), manifests.join("a.yaml"))?;
    let first = dir.path().join("first");
    let m = manifests.to_str().ok_or("path")?;
    assert!(compliance(&["scan", "--k8s-manifests", m, "--out", first.to_str().ok_or("path")?]).status.success());
    let previous = std::fs::read_dir(&first)?.filter_map(|e| e.ok()).map(|e| e.path()).next().ok_or("no report")?;
    std::fs::copy(repo().join("examples/manifests/legacy-worker.yaml"), manifests.join("b.yaml"))?;
    let second = dir.path().join("second");
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        m,
        "--out",
        second.to_str().ok_or("path")?,
        "--previous",
        previous.to_str().ok_or("path")?,
        "--format",
        "json",
        "--format",
        "markdown",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Since the previous run: 12 new failures, 0 resolved, 0 still failing"), "{stdout}");
    let report = report_in(&second)?;
    assert_eq!(report["delta"]["new_failures"].as_array().map(Vec::len), Some(12));
    Ok(())
}

#[test]
fn every_format_in_one_scan() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().to_str().ok_or("path")?;
    let mut args = vec!["scan", "--k8s-manifests", "examples/manifests", "--out", out_dir, "--fail-on", "high"];
    for f in [
        "json",
        "markdown",
        "html",
        "junit",
        "sarif",
        "oscal",
        "csv",
        "prometheus",
        "policyreport",
        "openreports",
        "ocsf",
    ] {
        args.extend(["--format", f]);
    }
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(1), "high failures exist: {}", text(&out.stderr));
    let written: Vec<String> =
        std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    let exts = [
        ".json",
        ".md",
        ".html",
        ".junit.xml",
        ".sarif",
        ".oscal.json",
        ".csv",
        ".prom",
        ".policyreport.json",
        ".openreports.json",
        ".ocsf.json",
    ];
    for ext in exts {
        // `x.json` is the report; the other `*.json` outputs have two dots.
        let file =
            written.iter().find(|n| n.ends_with(ext) && (ext != ".json" || n.matches('.').count() == 1)).ok_or(ext)?;
        let body = std::fs::read_to_string(dir.path().join(file))?;
        assert!(!body.is_empty(), "{file}");
        if ext.ends_with("json") || ext == ".sarif" {
            let _: Value = serde_json::from_str(&body)?;
        }
    }
    report_in(dir.path())?;
    assert_eq!(written.len(), exts.len(), "{written:?}");
    Ok(())
}

/// Microsoft's SARIF validator (npm `@microsoft/sarif-multitool`), which
/// scripts/test installs. Its exit code is 0 even when the log has errors,
/// so its own output log (SARIF) is read: errors and warnings by rule id.
fn sarif_multitool_findings(sarif: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let tool = std::env::var_os("COMPLIANCE_SARIF_MULTITOOL")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                PathBuf::from(h)
                    .join(".cache/compliance-rs/sarif-multitool/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool")
            })
        })
        .filter(|p| p.is_file())
        .ok_or("sarif-multitool is not installed: scripts/test installs it")?;
    // The validator's log goes elsewhere: it is itself a `.sarif` file.
    let log_dir = tempfile::tempdir()?;
    let log = log_dir.path().join("validation.sarif");
    let out = Command::new(tool)
        .arg("validate")
        .arg(sarif)
        .arg("--output")
        .arg(&log)
        .args(["--log", "ForceOverwrite"])
        .output()?;
    assert!(out.status.success(), "sarif-multitool failed: {}{}", text(&out.stdout), text(&out.stderr));
    let log: Value = serde_json::from_slice(&std::fs::read(&log)?)?;
    let mut findings = Vec::new();
    for run in log["runs"].as_array().ok_or("no runs in the validator's log")? {
        for r in run["results"].as_array().into_iter().flatten() {
            // SARIF's default level is warning.
            let level = r["level"].as_str().unwrap_or("warning");
            if matches!(level, "error" | "warning") {
                findings.push(format!("{level} {}: {}", r["ruleId"], r["message"]["text"]));
            }
        }
    }
    Ok(findings)
}

#[test]
#[ignore = "needs @microsoft/sarif-multitool (npm): scripts/test installs it"]
fn sarif_validates_with_microsofts_multitool_for_relative_and_absolute_paths() -> TestResult {
    let dir = tempfile::tempdir()?;
    let absolute = repo().join("examples/manifests").canonicalize()?;
    let absolute = absolute.to_str().ok_or("path")?;
    for (name, manifests) in [("relative", "examples/manifests"), ("absolute", absolute)] {
        let out_dir = dir.path().join(name);
        let out_dir = out_dir.to_str().ok_or("path")?;
        let out = compliance(&["scan", "--k8s-manifests", manifests, "--format", "sarif", "--out", out_dir]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let sarif = std::fs::read_dir(out_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "sarif"))
            .ok_or("no SARIF written")?;
        let log: Value = serde_json::from_slice(&std::fs::read(&sarif)?)?;
        assert!(log["runs"][0]["results"].as_array().is_some_and(|r| !r.is_empty()), "{name}: results to validate");
        let findings = sarif_multitool_findings(&sarif)?;
        assert!(findings.is_empty(), "{name} paths: {findings:#?}");
    }
    // The validator does find the defect an earlier version had: an
    // absolute path under a base id (SARIF1004).
    let broken = dir.path().join("broken.sarif");
    let mut log: Value = serde_json::from_slice(&std::fs::read(
        std::fs::read_dir(dir.path().join("relative"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "sarif"))
            .ok_or("no SARIF")?,
    )?)?;
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] =
        json!({"uri": "/srv/repo/manifests/app.yaml", "uriBaseId": "SRCROOT"});
    std::fs::write(&broken, serde_json::to_vec(&log)?)?;
    let findings = sarif_multitool_findings(&broken)?;
    assert!(findings.iter().any(|f| f.contains("SARIF1004")), "{findings:#?}");
    Ok(())
}

#[test]
#[ignore = "needs root to mount a 64 KiB tmpfs: scripts/test runs as root"]
fn a_full_disk_is_a_clear_error_and_leaves_no_partial_report() -> TestResult {
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small");
    std::fs::create_dir(&small)?;
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&small).status()?;
    assert!(mounted.success(), "mount a small tmpfs (needs root)");
    let out_dir = small.to_str().ok_or("path")?;
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--format",
        "json",
        "--format",
        "html",
        "--format",
        "csv",
        "--out",
        out_dir,
    ]);
    let left: Vec<String> = std::fs::read_dir(&small)?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("No space left on device"), "{}", text(&out.stderr));
    // Whatever fitted is complete; nothing half-written carries a report's name.
    for name in &left {
        assert!(!name.contains(".partial"), "a temporary file was left: {left:?}");
    }
    assert!(
        !left.iter().any(|n| n.ends_with(".json") && n.starts_with("compliance_report_")),
        "the JSON report (over 64 KiB) cannot be complete: {left:?}"
    );
    Ok(())
}
