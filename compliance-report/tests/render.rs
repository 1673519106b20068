//! Every output, parsed back.

use std::sync::Arc;

use chrono::{Duration, Utc};
use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Check, Control, Engine, Evidence, FrameworkDef, ResourceRef, Scope, Severity, Status, Waiver};
use compliance_report::{Format, Report};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn report() -> Result<Report, Box<dyn std::error::Error>> {
    let world = World::default();
    world.set("db-1", "demo.db.encrypted", true);
    world.set("db-2", "demo.db.encrypted", false);
    world.set("db-3", "demo.db.encrypted", false);
    world.set_unreadable("db-4", "demo.db.encrypted");
    let engine = Engine::new()
        .with_collector(Arc::new(InMemoryCollector::new("mem", vec![sample_check("demo.db.encrypted")?], world)))
        .with_framework(Arc::new(FrameworkDef::new(
            "demo",
            "Demo",
            "1",
            vec![Control::new("D-1", "Encrypted", vec!["demo.db.encrypted".parse()?])],
        )))
        .with_waivers([Waiver::new("W-9", "demo.db.*", "db-3", "legacy", "dba", Utc::now() + Duration::days(3))]);
    let run = engine.run(&Scope::all()).await;
    let mut report = Report::from_run(&run, engine.frameworks());
    // A manifest finding, with a file and line, and text that needs escaping.
    let check = Check::new("k8s.pod.run_as_non_root", "Containers run as non-root", Severity::High, "Workload")?
        .with_remediation("Set runAsNonRoot.");
    report.checks.push(check.clone());
    let resource = ResourceRef::new("k8s", "Deployment", "deploy/app.yaml#0/Deployment/web", "web")
        .with_file("deploy/app.yaml", Some(12));
    report.evidence.push(Evidence::new(
        &check,
        resource,
        Status::Fail,
        "container <script>alert(1)</script> & co runs as root",
    ));
    Ok(report)
}

#[tokio::test]
async fn junit_has_one_case_per_check_and_resource() -> TestResult {
    let r = report().await?;
    let xml = String::from_utf8(r.render(Format::Junit)?)?;
    let doc = roxmltree::Document::parse(&xml)?;
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), r.evidence.len());
    let failures = doc.descendants().filter(|n| n.has_tag_name("failure")).count();
    let errors = doc.descendants().filter(|n| n.has_tag_name("error")).count();
    assert_eq!((failures, errors), (3, 1));
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some(r.evidence.len().to_string().as_str()));
    let web =
        cases.iter().find(|c| c.attribute("name") == Some("deploy/app.yaml#0/Deployment/web")).ok_or("no web case")?;
    assert_eq!(web.attribute("file"), Some("deploy/app.yaml:12"));
    let message =
        web.children().find(|n| n.has_tag_name("failure")).and_then(|f| f.attribute("message")).unwrap_or_default();
    assert!(message.contains("<script>"), "escaped in XML, restored by the parser: {message}");
    Ok(())
}

#[tokio::test]
async fn sarif_rules_are_checks_and_results_are_failures() -> TestResult {
    let r = report().await?;
    let sarif: Value = serde_json::from_slice(&r.render(Format::Sarif)?)?;
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "compliance-rs");
    let rules = run["tool"]["driver"]["rules"].as_array().ok_or("rules")?;
    let rule_ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(rule_ids, ["demo.db.encrypted", "k8s.pod.run_as_non_root"]);
    let results = run["results"].as_array().ok_or("results")?;
    assert_eq!(results.len(), 3, "failures only");
    for result in results {
        let index = result["ruleIndex"].as_u64().ok_or("ruleIndex")? as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap_or_default()));
    }
    let manifest = results.iter().find(|r| r["ruleId"] == "k8s.pod.run_as_non_root").ok_or("manifest result")?;
    let physical = &manifest["locations"][0]["physicalLocation"];
    assert_eq!(physical["artifactLocation"]["uri"], "deploy/app.yaml");
    assert_eq!(physical["region"]["startLine"], 12);
    let waived = results.iter().find(|r| r["properties"]["resource"] == "db-3").ok_or("waived result")?;
    assert_eq!(waived["suppressions"][0]["kind"], "external");
    assert!(waived["suppressions"][0]["justification"].as_str().is_some_and(|j| j.starts_with("W-9: legacy")));
    Ok(())
}

#[tokio::test]
async fn csv_has_one_row_per_evidence() -> TestResult {
    let r = report().await?;
    let bytes = r.render(Format::Csv)?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers()?.clone();
    assert_eq!(&headers[0], "check_id");
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    assert_eq!(rows.len(), r.evidence.len());
    let web = rows.iter().find(|row| &row[6] == "web").ok_or("no web row")?;
    assert_eq!((&web[1], &web[2], &web[8], &web[9]), ("fail", "high", "deploy/app.yaml", "12"));
    let waived = rows.iter().find(|row| &row[5] == "db-3").ok_or("no db-3 row")?;
    assert_eq!(&waived[15], "W-9");
    Ok(())
}

#[tokio::test]
async fn markdown_and_html_for_people() -> TestResult {
    let r = report().await?;
    let md = String::from_utf8(r.render(Format::Markdown)?)?;
    assert!(md.starts_with("# Compliance report"));
    assert!(md.contains("| Demo 1 | 0.0% | 0 | 1 |"), "{md}");
    assert!(md.contains("### `demo.db.encrypted` (high)"), "{md}");
    assert!(md.contains("## Evidence gaps"), "{md}");
    assert!(md.contains("W-9 (dba, until"), "{md}");
    let html = String::from_utf8(r.render(Format::Html)?)?;
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script>"), "text is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
    assert!(html.contains("<span class=\"seg fail\" style=\"width:100.0%\""), "a bar per framework: {html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "self-contained: nothing loaded from elsewhere");
    Ok(())
}

#[tokio::test]
async fn every_format_is_written_without_overwriting() -> TestResult {
    let r = report().await?;
    let dir = tempfile::tempdir()?;
    for format in Format::ALL {
        let first = r.write(format, dir.path())?;
        let second = r.write(format, dir.path())?;
        assert_ne!(first, second);
        assert!(first.to_string_lossy().ends_with(format.extension()));
    }
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 2 * Format::ALL.len());
    Ok(())
}

/// Text that came from the systems judged (object names, messages) is
/// shown, never interpreted: no formula in CSV, no markup in Markdown, and
/// no control character that makes JUnit XML ill-formed.
#[tokio::test]
async fn hostile_text_in_evidence_cannot_inject_into_any_output() -> TestResult {
    let mut r = report().await?;
    let check = Check::new("k8s.pod.run_as_non_root", "Containers run as non-root", Severity::High, "Workload")?;
    let resource = ResourceRef::new("k8s", "Pod", "=HYPERLINK(\"http://x\")", "=cmd|' /C calc'!A0");
    r.evidence.push(Evidence::new(
        &check,
        resource,
        Status::Fail,
        "bell \u{7} and escape \u{1b}[31m <img src=x onerror=alert(1)>",
    ));

    let xml = String::from_utf8(r.render(Format::Junit)?)?;
    roxmltree::Document::parse(&xml)?;
    assert!(!xml.contains('\u{7}') && !xml.contains('\u{1b}'));

    let md = String::from_utf8(r.render(Format::Markdown)?)?;
    assert!(!md.contains("<img") && !md.contains("<script>"), "{md}");
    assert!(md.contains("&lt;img src=x onerror=alert(1)&gt;"), "{md}");

    let csv = String::from_utf8(r.render(Format::Csv)?)?;
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    for row in rows.records() {
        for cell in row?.iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "a cell a spreadsheet would evaluate: {cell}");
        }
    }
    Ok(())
}
