//! `compliance scan` of manifests, Rego policies and Terraform: the report, exit codes, waivers, gaps.

use serde_json::Value;

use crate::support::{TestResult, compliance, repo, report_in, text};

#[test]
fn scan_writes_the_report_and_fail_on_sets_the_exit_code() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().to_str().ok_or("path")?;
    let out = compliance(&["scan", "--k8s-manifests", "examples/manifests", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("report: "), "{stdout}");
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("Compliance: ")),
        "ends with the summary line: {stdout}"
    );
    let report = report_in(dir.path())?;
    assert_eq!(report["schema_version"], compliance_report::SCHEMA_VERSION);
    assert!(report["total_evidence"].as_u64().is_some_and(|n| n > 50));
    let kinds: Vec<&str> = report["evidence"]
        .as_array()
        .ok_or("evidence")?
        .iter()
        .filter_map(|e| e["resource"]["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"Service"), "a Service is not a workload");

    let out =
        compliance(&["scan", "--k8s-manifests", "examples/manifests", "--out", out_dir, "--fail-on", "high", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).is_empty(), "-q prints no progress: {}", text(&out.stderr));
    // Only the hardened Deployment: nothing fails.
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests/payments-api.yaml",
        "--out",
        out_dir,
        "--fail-on",
        "info",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    Ok(())
}

#[test]
fn waivers_are_applied_and_bad_waiver_files_name_the_problem() -> TestResult {
    let dir = tempfile::tempdir()?;
    let waivers = dir.path().join("w.yaml");
    std::fs::write(
        &waivers,
        "- id: DBG-1\n  check: k8s.*\n  resource: '*/kube-system/Pod/node-debugger'\n  reason: incident 4711\n  owner: sre@example.com\n  expires: 2099-01-01\n",
    )?;
    let w = waivers.to_str().ok_or("path")?;
    let out_dir = dir.path().to_str().ok_or("path")?;
    let args = [
        "scan",
        "--k8s-manifests",
        "examples/manifests/debug-pod.yaml",
        "--out",
        out_dir,
        "--fail-on",
        "high",
        "--waivers",
        w,
    ];
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(0), "every failure is waived: {}", text(&out.stdout));
    let report = report_in(dir.path())?;
    let failing: Vec<&Value> =
        report["evidence"].as_array().ok_or("evidence")?.iter().filter(|e| e["status"] == "fail").collect();
    assert!(!failing.is_empty());
    assert!(failing.iter().all(|e| e["waiver"]["id"] == "DBG-1"), "waived failures keep status fail");

    std::fs::write(&waivers, "- id: X\n  check: k8s.*\n  owner: me\n  expires: 2099-01-01\n")?;
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("w.yaml:1: waiver #1 (id X): missing field `reason`"), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn unreadable_files_are_gaps_named_by_file_and_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("good.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}]\n",
    )?;
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nspec:\n  replicas: {{ .Values.replicas }}\n",
    )?;
    let out_dir = dir.path().join("out");
    let manifests = dir.path().to_str().ok_or("path")?;
    let out = compliance(&["scan", "--k8s-manifests", manifests, "--out", out_dir.to_str().ok_or("path")?]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken.yaml:4"), "{stderr}");
    let report = report_in(&out_dir)?;
    assert_eq!(report["gaps"].as_array().map(Vec::len), Some(1));
    assert!(report["evidence"].as_array().is_some_and(|e| !e.is_empty()), "the good file is still judged");
    let out =
        compliance(&["scan", "--k8s-manifests", manifests, "--out", out_dir.to_str().ok_or("path")?, "--fail-on-gaps"]);
    assert_eq!(out.status.code(), Some(1));
    Ok(())
}

#[test]
fn rego_policies_are_checks_mapped_to_controls_and_broken_ones_are_gaps() -> TestResult {
    let policies = tempfile::tempdir()?;
    std::fs::copy(repo().join("examples/policies/soc2-workloads.rego"), policies.path().join("workloads.rego"))?;
    std::fs::write(policies.path().join("broken.rego"), "package broken\n\ndeny contains msg if {\n  msg := \n}\n")?;
    let out = tempfile::tempdir()?;
    let o = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--rego-policy",
        policies.path().to_str().ok_or("path")?,
        "--out",
        out.path().to_str().ok_or("path")?,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("broken.rego:4"), "{stderr}");
    let report = report_in(out.path())?;
    let rego: Vec<&Value> = report["evidence"]
        .as_array()
        .ok_or("evidence")?
        .iter()
        .filter(|e| e["check_id"] == "rego.example.soc2_workloads")
        .collect();
    assert_eq!(rego.len(), 4, "one per workload in examples/manifests");
    let legacy = rego.iter().find(|e| e["resource"]["name"] == "legacy-worker").ok_or("legacy-worker")?;
    assert_eq!(legacy["status"], "fail");
    assert!(legacy["message"].as_str().unwrap_or_default().starts_with("labels missing"));
    let soc2 = report["frameworks"].as_array().ok_or("frameworks")?.iter().find(|f| f["id"] == "soc2").ok_or("soc2")?;
    let cc61 = soc2["controls"].as_array().ok_or("controls")?.iter().find(|c| c["id"] == "CC6.1").ok_or("CC6.1")?;
    assert!(cc61["checks"].as_array().ok_or("checks")?.iter().any(|c| c == "rego.example.soc2_workloads"));
    let gaps = report["gaps"].as_array().ok_or("gaps")?;
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0]["source"].as_str().unwrap_or_default().ends_with("broken.rego:4"), "{gaps:?}");
    Ok(())
}

#[test]
fn terraform_findings_point_at_file_and_line_in_sarif() -> TestResult {
    let out = tempfile::tempdir()?;
    let o = compliance(&[
        "scan",
        "--terraform",
        "examples/terraform",
        "--format",
        "sarif",
        "--format",
        "json",
        "--out",
        out.path().to_str().ok_or("path")?,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report = report_in(out.path())?;
    assert_eq!(report["total_evidence"], 24);
    let sarif_path = std::fs::read_dir(out.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "sarif"))
        .ok_or("no SARIF")?;
    let sarif: Value = serde_json::from_slice(&std::fs::read(sarif_path)?)?;
    let results = sarif["runs"][0]["results"].as_array().ok_or("results")?;
    let legacy_pab = results
        .iter()
        .find(|r| {
            r["ruleId"] == "aws.s3.public_access_block"
                && r["message"]["text"].as_str().is_some_and(|t| t.contains("no public access block"))
                && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 77
        })
        .ok_or("no SARIF result for the legacy bucket at main.tf:77")?;
    let uri = legacy_pab["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap_or_default();
    assert_eq!(uri, "examples/terraform/main.tf");
    Ok(())
}

/// A FIFO named like a manifest is a gap for that file only: the good
/// file's failure is still found, `--fail-on` still fails, and the process
/// ends (a blocking read of a FIFO would never return).
#[cfg(unix)]
#[test]
fn a_fifo_among_the_manifests_is_one_gap_and_the_scan_still_fails_on_the_good_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(repo().join("examples/manifests/legacy-worker.yaml"), dir.path().join("legacy-worker.yaml"))?;
    assert!(std::process::Command::new("mkfifo").arg(dir.path().join("x.yaml")).status()?.success());
    let out_dir = tempfile::tempdir()?;
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        dir.path().to_str().ok_or("path")?,
        "--out",
        out_dir.path().to_str().ok_or("path")?,
        "--fail-on",
        "high",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = report_in(out_dir.path())?;
    let gaps = report["gaps"].as_array().ok_or("gaps")?;
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0]["source"].as_str().unwrap_or_default().ends_with("x.yaml"), "{gaps:?}");
    assert!(report["non_compliant"].as_u64().unwrap_or_default() > 0);
    Ok(())
}
