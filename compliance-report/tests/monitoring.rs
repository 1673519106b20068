//! Metrics, alert rules and dashboard: generated from the same names, and
//! checked by promtool when it is installed (CI installs it and requires it).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Control, Engine, FrameworkDef, Scope};
use compliance_report::metrics::{alert_rules, grafana_dashboard};
use compliance_report::{Format, Report};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// promtool, from Debian's prometheus package (`scripts/test` installs it).
fn promtool() -> Result<&'static str, String> {
    let found = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    found.then_some("promtool").ok_or_else(|| "promtool is not installed: scripts/test installs it".to_owned())
}

async fn report() -> Result<Report, Box<dyn std::error::Error>> {
    let world = World::default();
    world.set("a", "demo.x.flag", false);
    world.set("b", "demo.x.flag", true);
    world.set_unreadable("c", "demo.x.flag");
    let engine = Engine::new()
        .with_collector(Arc::new(InMemoryCollector::new("mem", vec![sample_check("demo.x.flag")?], world)))
        .with_framework(Arc::new(FrameworkDef::new(
            "demo",
            "Demo",
            "1",
            vec![Control::new("D-1", "Flag", vec!["demo.x.flag".parse()?])],
        )));
    let run = engine.run(&Scope::all()).await;
    Ok(Report::from_run(&run, engine.frameworks()))
}

fn exported(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn referenced(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("compliance_") {
        let start = i + pos;
        let end = start
            + text[start..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len() - start);
        if start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            names.push(text[start..end].to_owned());
        }
        i = end;
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn the_exposition_has_every_metric() -> TestResult {
    let r = report().await?;
    let text = String::from_utf8(r.render(Format::Prometheus)?)?;
    assert_eq!(
        exported(&text),
        [
            "compliance_check_failed",
            "compliance_controls",
            "compliance_evidence",
            "compliance_evidence_gaps",
            "compliance_last_evidence_timestamp",
            "compliance_score_percentage",
            "compliance_violations_total",
        ]
    );
    assert!(text.lines().any(|l| l.starts_with("compliance_score_percentage ") && l.ends_with(" 50.0")), "{text}");
    assert!(text.contains("compliance_score_percentage{framework=\"demo\"} 0.0"));
    assert!(text.contains("compliance_check_failed{check=\"demo.x.flag\",severity=\"high\"} 1"));
    assert!(text.contains("compliance_evidence_gaps{collector=\"mem\"} 1"));
    assert!(text.contains("compliance_violations_total 1"));
    assert!(!text.contains("# EOF"));
    Ok(())
}

#[tokio::test]
#[ignore = "needs promtool (Debian package prometheus): scripts/test installs it"]
async fn the_exposition_passes_promtool() -> TestResult {
    let text = String::from_utf8(report().await?.render(Format::Prometheus)?)?;
    let mut child = Command::new(promtool()?)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or("stdin")?.write_all(text.as_bytes())?;
    assert_accepted(&child.wait_with_output()?);
    Ok(())
}

/// promtool exited 0; else its output is the failure message.
fn assert_accepted(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn rules_and_dashboard_use_only_exported_names_and_the_committed_files_are_current() -> TestResult {
    let r = report().await?;
    let exported = exported(&String::from_utf8(r.render(Format::Prometheus)?)?);
    let rules = alert_rules();
    let dashboard = serde_json::to_string_pretty(&grafana_dashboard())?;
    for name in referenced(&rules).into_iter().chain(referenced(&dashboard)) {
        assert!(exported.contains(&name), "{name} is used but not exported");
    }
    for alert in ["ComplianceViolation", "ComplianceDrift", "MissingComplianceEvidence", "ComplianceEvidenceGaps"] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    assert_eq!(
        std::fs::read_to_string(deploy.join("prometheus/compliance-alerts.yaml"))?.trim_end(),
        rules.trim_end(),
        "deploy/prometheus/compliance-alerts.yaml is stale: compliance monitoring alert-rules > deploy/prometheus/compliance-alerts.yaml"
    );
    assert_eq!(
        std::fs::read_to_string(deploy.join("grafana/compliance-dashboard.json"))?.trim_end(),
        dashboard.trim_end(),
        "deploy/grafana/compliance-dashboard.json is stale: compliance monitoring grafana-dashboard > deploy/grafana/compliance-dashboard.json"
    );
    Ok(())
}

#[test]
#[ignore = "needs promtool (Debian package prometheus): scripts/test installs it"]
fn the_alert_rules_pass_promtool() -> TestResult {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/compliance-alerts.yaml");
    assert_accepted(&Command::new(promtool()?).args(["check", "rules"]).arg(rules).output()?);
    Ok(())
}

#[tokio::test]
async fn a_collector_that_failed_this_run_keeps_its_last_evidence_time_so_staleness_shows() -> TestResult {
    let failed_run = Report::from_owned_run(compliance_core::Run::from_evidence(Vec::new(), Vec::new()), &[]);
    let earlier = std::collections::BTreeMap::from([("k8s-cluster".to_owned(), 1_700_000_000_i64)]);
    let text = compliance_report::metrics::exposition_with_history(&failed_run, 3, &earlier)?;
    assert!(text.contains(r#"compliance_last_evidence_timestamp{collector="k8s-cluster"} 1700000000"#), "{text}");
    assert!(text.contains("compliance_violations_total 3"), "{text}");
    Ok(())
}
