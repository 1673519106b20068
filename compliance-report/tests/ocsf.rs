//! OCSF Compliance Finding events (class 2003), validated with the pinned
//! PyPI package `py-ocsf-models` (tests/data/ocsf_validate.py).
//! `scripts/test` installs it; plain `cargo test` lists the test as ignored.

mod support;

use std::path::PathBuf;
use std::process::Command;

use compliance_report::Format;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn python_with_ocsf() -> Result<PathBuf, String> {
    let python = std::env::var_os("COMPLIANCE_TOOLS_PYTHON").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/compliance-rs/tools-venv/bin/python"))
    });
    python
        .filter(|p| Command::new(p).args(["-c", "import py_ocsf_models"]).output().is_ok_and(|o| o.status.success()))
        .ok_or_else(|| "py-ocsf-models is not installed: scripts/test installs it".to_owned())
}

/// Runs the validator on `events`: (valid, what it printed).
fn validate(python: &PathBuf, events: &Value) -> Result<(bool, String), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.ocsf.json");
    std::fs::write(&path, serde_json::to_vec(events)?)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ocsf_validate.py");
    let out = Command::new(python).arg(script).arg(&path).output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

async fn ocsf_events() -> Result<Value, Box<dyn std::error::Error>> {
    let report = support::mixed_report().await?;
    Ok(serde_json::from_slice(&report.render(Format::Ocsf)?)?)
}

#[tokio::test]
async fn one_event_per_evidence_with_status_controls_and_a_stable_uid() -> TestResult {
    let events = ocsf_events().await?;
    let list = events.as_array().ok_or("not an array")?;
    assert_eq!(list.len(), 6, "one event per evidence");
    let api = &list[0];
    assert_eq!((&api["class_uid"], &api["type_uid"]), (&json!(2003), &json!(200301)));
    assert_eq!(api["compliance"]["status_id"], 3, "a failure");
    assert_eq!(api["compliance"]["standards"], json!(["SOC 2 2017", "PCI DSS 4.0"]));
    assert_eq!(api["compliance"]["requirements"], json!(["SOC 2 2017 CC6.1", "SOC 2 2017 CC6.8", "PCI DSS 4.0 2.2.5"]));
    assert_eq!(api["severity_id"], 4);
    assert_eq!(api["time"], 1_795_867_200_000i64);
    assert_eq!(api["finding_info"]["uid"], "k8s.demo.privileged:m.yaml#0/shop/Deployment/api");
    assert_eq!(api["resources"][0]["namespace"], "shop");
    assert_eq!(api["remediation"]["desc"], "Set the flag.");
    let statuses: Vec<&Value> = list.iter().map(|e| &e["compliance"]["status_id"]).collect();
    assert_eq!(statuses, [&json!(3), &json!(1), &json!(2), &json!(99), &json!(3), &json!(3)]);
    let waived = &list[4];
    assert_eq!((&waived["status_id"], &waived["unmapped"]["waiver"]["id"]), (&json!(3), &json!("W-7")));
    assert_eq!(list[5]["resources"][0]["data"]["account"], "123456789012");

    // The same evidence in a later run is the same finding.
    let again = ocsf_events().await?;
    assert_eq!(again[0]["finding_info"]["uid"], api["finding_info"]["uid"]);
    Ok(())
}

#[tokio::test]
#[ignore = "needs py-ocsf-models (PyPI): scripts/test installs it"]
async fn events_follow_the_ocsf_compliance_finding_class() -> TestResult {
    let python = python_with_ocsf()?;
    let events = ocsf_events().await?;
    let (ok, output) = validate(&python, &events)?;
    assert!(ok, "{output}");
    // The validator is not a rubber stamp: each of these is refused.
    let mut breakages: Vec<(&str, Value)> = Vec::new();
    let mut e = events.clone();
    e[0]["compliance"]["status_id"] = json!(4);
    breakages.push(("status_id outside its enum", e));
    let mut e = events.clone();
    e[0]["severty_id"] = json!(4);
    breakages.push(("a misspelt field", e));
    let mut e = events.clone();
    e[0]["time"] = json!(1_795_867_200i64);
    breakages.push(("a time in seconds", e));
    let mut e = events.clone();
    if let Some(info) = e[0]["finding_info"].as_object_mut() {
        info.remove("uid");
    }
    breakages.push(("a finding without uid", e));
    for (what, broken) in breakages {
        let (ok, output) = validate(&python, &broken)?;
        assert!(!ok, "{what} was accepted: {output}");
    }
    Ok(())
}
