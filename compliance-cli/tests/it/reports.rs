//! Report outputs: every format in one scan, and the changes since a previous report.

use serde_json::Value;

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
    for f in ["json", "markdown", "html", "junit", "sarif", "oscal", "csv", "prometheus"] {
        args.extend(["--format", f]);
    }
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(1), "high failures exist: {}", text(&out.stderr));
    let written: Vec<String> =
        std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    for ext in [".json", ".md", ".html", ".junit.xml", ".sarif", ".oscal.json", ".csv", ".prom"] {
        let file =
            written.iter().find(|n| n.ends_with(ext) && (ext != ".json" || !n.ends_with(".oscal.json"))).ok_or(ext)?;
        let body = std::fs::read_to_string(dir.path().join(file))?;
        assert!(!body.is_empty(), "{file}");
        if ext.ends_with("json") || ext == ".sarif" {
            let _: Value = serde_json::from_str(&body)?;
        }
    }
    report_in(dir.path())?;
    assert_eq!(written.len(), 8, "{written:?}");
    Ok(())
}
