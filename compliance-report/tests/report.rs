//! The JSON report contract and the scores behind it.

use std::sync::Arc;

use chrono::{Duration, Utc};
use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Control, Engine, Framework, FrameworkDef, Scope, Severity, Waiver};
use compliance_report::{ControlStatus, Report, SCHEMA_VERSION};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn sample_report() -> Result<Report, Box<dyn std::error::Error>> {
    let world = World::default();
    world.set("a", "demo.x.pass", true);
    world.set("b", "demo.x.pass", true);
    world.set("a", "demo.x.fail", false);
    world.set("b", "demo.x.waived", false);
    world.set("c", "demo.x.unknown", true);
    world.set_unreadable("c", "demo.x.unknown");
    let checks = ["demo.x.pass", "demo.x.fail", "demo.x.waived", "demo.x.unknown"]
        .into_iter()
        .map(sample_check)
        .collect::<Result<Vec<_>, _>>()?;
    let framework: Arc<dyn Framework> = Arc::new(FrameworkDef::new(
        "demo",
        "Demo framework",
        "2026",
        vec![
            Control::new("D-1", "Passing", vec!["demo.x.pass".parse()?]),
            Control::new("D-2", "Failing", vec!["demo.x.pass".parse()?, "demo.x.fail".parse()?]),
            Control::new("D-3", "Waived", vec!["demo.x.waived".parse()?]),
            Control::new("D-4", "Only errors", vec!["demo.x.unknown".parse()?]),
            Control::new("D-5", "No evidence", vec!["demo.x.other".parse()?]),
        ],
    ));
    let engine = Engine::new()
        .with_collector(Arc::new(InMemoryCollector::new("mem", checks, world)))
        .with_framework(framework)
        .with_waivers([Waiver::new("W-1", "demo.x.waived", "*", "accepted", "owner", Utc::now() + Duration::days(1))]);
    let run = engine.run(&Scope::all()).await;
    Ok(Report::from_run(&run, engine.frameworks()))
}

#[tokio::test]
async fn counts_percentage_and_control_statuses() -> TestResult {
    let report = sample_report().await?;
    assert_eq!(
        (report.total_evidence, report.compliant, report.non_compliant, report.waived, report.errors),
        (5, 2, 2, 1, 1)
    );
    // 2 compliant of 4 judged: the error is not a pass and not in the figure.
    assert_eq!(report.compliance_percentage, 50.0);
    let fw = &report.frameworks[0];
    let statuses: Vec<ControlStatus> = fw.controls.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            ControlStatus::Pass,
            ControlStatus::Fail,
            ControlStatus::Waived,
            ControlStatus::Unknown,
            ControlStatus::NotAssessed
        ]
    );
    // 1 passed of 4 assessed controls.
    assert_eq!(fw.score_percentage, Some(25.0));
    assert_eq!(report.failures_at_or_above(Severity::High), 1, "the waived failure does not count");
    let per_check: Vec<(String, Option<f64>, usize, usize)> =
        report.check_results.iter().map(|c| (c.check_id.to_string(), c.score_percentage, c.waived, c.errors)).collect();
    assert_eq!(
        per_check,
        [
            ("demo.x.fail".to_owned(), Some(0.0), 0, 0),
            ("demo.x.pass".to_owned(), Some(100.0), 0, 0),
            ("demo.x.unknown".to_owned(), None, 0, 1),
            ("demo.x.waived".to_owned(), Some(0.0), 1, 0),
        ]
    );
    assert_eq!(
        report.summary_line(),
        "Compliance: 50.0% (2 of 4 judged evidence compliant; 1 errors, 0 gaps); demo 25.0%"
    );
    Ok(())
}

#[tokio::test]
async fn json_report_follows_the_contract_and_reads_back() -> TestResult {
    let report = sample_report().await?;
    let dir = tempfile::tempdir()?;
    let path = report.write_json(&dir.path().join("nested/out"))?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or("no name")?;
    assert_eq!(name.len(), "compliance_report_20261127_013000.json".len());
    assert!(name.starts_with("compliance_report_") && name.ends_with(".json"));

    let json: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    for key in [
        "schema_version",
        "run_id",
        "generated_at",
        "compliance_percentage",
        "total_evidence",
        "compliant",
        "non_compliant",
        "errors",
        "frameworks",
        "gaps",
        "evidence",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["schema_version"], SCHEMA_VERSION);
    assert!(json["checks"].as_array().is_some_and(|c| c.len() == 4), "check metadata travels with the report");
    let generated = json["generated_at"].as_str().ok_or("generated_at")?;
    assert!(generated.ends_with('Z'), "UTC RFC 3339: {generated}");
    let fw = &json["frameworks"][0];
    for key in ["id", "name", "version", "score_percentage", "controls"] {
        assert!(fw.get(key).is_some(), "framework missing {key}");
    }
    for key in ["id", "title", "status", "checks"] {
        assert!(fw["controls"][0].get(key).is_some(), "control missing {key}");
    }
    let evidence = json["evidence"].as_array().ok_or("evidence")?;
    for e in evidence {
        for key in ["check_id", "status", "severity", "resource", "observed_at", "message", "details", "waiver"] {
            assert!(e.get(key).is_some(), "evidence missing {key}: {e}");
        }
        for key in ["provider", "kind", "id", "name"] {
            assert!(e["resource"].get(key).is_some(), "resource missing {key}");
        }
        let status = e["status"].as_str().ok_or("status")?;
        assert!(["pass", "fail", "error", "not_applicable"].contains(&status));
    }
    let waived: Vec<&Value> = evidence.iter().filter(|e| !e["waiver"].is_null()).collect();
    assert_eq!(waived.len(), 1);
    assert_eq!(waived[0]["status"], "fail");
    assert_eq!(waived[0]["waiver"]["id"], "W-1");

    assert_eq!(Report::read_json(&path)?, report);

    // A second report of the same second does not overwrite the first.
    let second = report.write_json(&dir.path().join("nested/out"))?;
    assert_ne!(second, path);
    assert!(second.to_string_lossy().ends_with("_2.json"), "{}", second.display());
    assert_eq!(Report::read_json(&path)?, report);
    Ok(())
}

#[tokio::test]
async fn delta_between_two_runs() -> TestResult {
    let world = World::default();
    let check = "demo.x.flag";
    for (r, ok) in [
        ("stays-good", true),
        ("breaks", true),
        ("gets-fixed", false),
        ("stays-bad", false),
        ("goes-away", false),
        ("becomes-unreadable", true),
    ] {
        world.set(r, check, ok);
    }
    let framework: Arc<dyn Framework> =
        Arc::new(FrameworkDef::new("demo", "Demo", "1", vec![Control::new("D-1", "Flag", vec![check.parse()?])]));
    let collector = Arc::new(InMemoryCollector::new("mem", vec![sample_check(check)?], world.clone()));
    let engine = Engine::new().with_collector(collector).with_framework(framework);
    let first = Report::from_run(&engine.run(&Scope::all()).await, engine.frameworks());

    world.set("breaks", check, false);
    world.set("gets-fixed", check, true);
    world.set_unreadable("becomes-unreadable", check);
    world.set("new-and-bad", check, false);
    let second_run = engine.run(&Scope::all()).await;
    let mut second_run = second_run;
    second_run.evidence.retain(|e| e.resource.id != "goes-away");
    let second = Report::from_run(&second_run, engine.frameworks()).with_delta_from(&first);
    let delta = second.delta.as_ref().ok_or("no delta")?;
    let ids = |list: &[compliance_report::Change]| list.iter().map(|c| c.resource.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&delta.new_failures), ["breaks", "new-and-bad"]);
    assert_eq!(ids(&delta.resolved), ["gets-fixed"]);
    assert_eq!(ids(&delta.still_failing), ["stays-bad"]);
    assert_eq!(ids(&delta.no_longer_observed), ["goes-away"]);
    assert_eq!(ids(&delta.new_gaps), ["becomes-unreadable"]);
    let per_check = &delta.by_check[&check.parse()?];
    assert_eq!((per_check.new_failures, per_check.resolved, per_check.still_failing, per_check.new_gaps), (2, 1, 1, 1));
    assert!(delta.controls.is_empty(), "D-1 failed in both runs");
    assert_eq!(
        delta.summary_line(),
        "Since the previous run: 2 new failures, 1 resolved, 1 still failing, 1 no longer observed, 1 new gaps"
    );
    let json = serde_json::to_value(&second)?;
    assert_eq!(json["delta"]["previous_run_id"], first.run_id.to_string());
    Ok(())
}

#[tokio::test]
async fn the_json_report_validates_against_the_shipped_schema() -> TestResult {
    let schema: Value = serde_json::from_str(compliance_report::REPORT_SCHEMA)?;
    let validator = jsonschema::validator_for(&schema)?;
    let mut report = sample_report().await?;
    let check = report.evidence[0].check_id.clone();
    report.declared_controls =
        vec![compliance_core::DeclaredControl::new(check, "CC6.1", "AWS Config conformance pack p")];
    let json: Value = serde_json::from_slice(&report.render(compliance_report::Format::Json)?)?;
    assert!(json["declared_controls"].is_array());
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And the schema is not a formality: a broken report is refused.
    let mut broken = json.clone();
    broken["evidence"][0]["status"] = Value::from("passed");
    broken["generated_at"] = Value::from("2026-11-27T10:00:00+02:00");
    broken["declared_controls"][0]["pack"] = Value::from("p");
    assert_eq!(validator.iter_errors(&broken).count(), 3);
    Ok(())
}
