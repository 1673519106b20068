//! Frameworks: the built-in mappings, `frameworks show`, and scores in the report.

use serde_json::Value;

use crate::support::{TestResult, compliance, report_in, text};

#[test]
fn built_in_mappings_name_known_checks_and_explain_every_unmapped_check() -> TestResult {
    let checks: Value = serde_json::from_slice(&compliance(&["checks", "list", "--format", "json"]).stdout)?;
    let ids: Vec<&str> = checks.as_array().ok_or("checks")?.iter().filter_map(|c| c["id"].as_str()).collect();
    let registry = compliance_rs::registry();
    for (file, framework) in compliance_report::builtin_mappings() {
        // AWS Config rules have no catalogue entry: the provider knows their ids.
        let known = |c: &compliance_core::CheckId| registry.knows(c) || ids.contains(&c.as_str());
        compliance_report::check_known(&framework, file, known)?;
        for id in &ids {
            let mapped = framework.framework.controls.iter().any(|c| c.checks.iter().any(|k| k.as_str() == *id));
            let explained = framework.unmapped.keys().any(|k| k.as_str() == *id);
            assert!(mapped || explained, "{file}: {id} maps to no control and the file does not say why");
        }
    }
    Ok(())
}

#[test]
fn frameworks_show_and_scores_in_the_report() -> TestResult {
    let out = compliance(&["frameworks", "list"]);
    let listing = text(&out.stdout);
    for id in ["soc2", "iso27001", "pci-dss"] {
        assert!(listing.lines().any(|l| l.starts_with(id)), "{listing}");
    }
    let out = compliance(&["frameworks", "show", "soc2"]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("CC6.8") && shown.contains("k8s.pod.run_as_non_root"), "{shown}");

    let dir = tempfile::tempdir()?;
    let own = dir.path().join("baseline.yaml");
    std::fs::write(
        &own,
        "id: baseline\nname: Our baseline\nversion: '1'\ncontrols:\n  - {id: B-1, title: No root, checks: [k8s.pod.run_as_non_root]}\n",
    )?;
    let out_dir = dir.path().join("out");
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--framework",
        "soc2",
        "--framework-file",
        own.to_str().ok_or("path")?,
        "--out",
        out_dir.to_str().ok_or("path")?,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let last = text(&out.stdout).lines().last().map(str::to_owned).unwrap_or_default();
    assert!(last.contains("; soc2 ") && last.contains("; baseline 0.0%"), "{last}");
    let report = report_in(&out_dir)?;
    let ids: Vec<&str> =
        report["frameworks"].as_array().ok_or("frameworks")?.iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(ids, ["soc2", "baseline"]);

    std::fs::write(
        &own,
        "id: baseline\nname: Our baseline\nversion: '1'\ncontrols:\n  - {id: B-1, title: No root, checks: [k8s.pod.runs_as_root]}\n",
    )?;
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--framework-file",
        own.to_str().ok_or("path")?,
        "--out",
        out_dir.to_str().ok_or("path")?,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("control \"B-1\": unknown check k8s.pod.runs_as_root"), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn the_readmes_coverage_table_is_what_the_command_prints() -> TestResult {
    let out = compliance(&["frameworks", "coverage"]);
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    assert!(table.starts_with("| framework | controls | with a native check |"), "{table}");
    let readme = std::fs::read_to_string(crate::support::repo().join("README.md"))?;
    assert!(readme.contains(table.trim_end()), "README.md's coverage table is stale; paste:\n{table}");
    Ok(())
}
