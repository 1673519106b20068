//! OSCAL 1.1 assessment results: an observation per evidence, a finding per
//! assessed control (`satisfied` or `not-satisfied`), for GRC tools.

use std::collections::HashMap;

use compliance_core::Status;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{ControlStatus, Report};

/// The OSCAL version the document is written against.
pub const OSCAL_VERSION: &str = "1.1.2";
const NS: &str = "https://compliance-rs.dev/ns/oscal";

fn prop(name: &str, value: &str) -> Value {
    json!({ "name": name, "ns": NS, "value": value })
}

/// An OSCAL token (letters first; letters, digits, `.`, `-`, `_`) for a
/// framework's control: `soc2-cc6.1`, `pci-dss-8.2.6`.
pub fn control_token(framework: &str, control: &str) -> String {
    let raw = format!("{framework}-{control}").to_ascii_lowercase();
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' }).collect()
}

/// Renders the report as an OSCAL assessment-results document.
pub fn assessment_results(report: &Report) -> Value {
    let mut subjects: HashMap<&str, Uuid> = HashMap::new();
    let mut observation_of: HashMap<(&str, &str), Uuid> = HashMap::new();
    let mut observations = Vec::with_capacity(report.evidence.len());
    for e in &report.evidence {
        let subject = *subjects.entry(e.resource.id.as_str()).or_insert_with(Uuid::new_v4);
        let id = Uuid::new_v4();
        observation_of.insert((e.check_id.as_str(), e.resource.id.as_str()), id);
        let mut props = vec![
            prop("check-id", e.check_id.as_str()),
            prop("status", e.status.as_str()),
            prop("severity", e.severity.as_str()),
        ];
        if let Some(w) = &e.waiver {
            props.push(prop("waiver", &w.id));
        }
        observations.push(json!({
            "uuid": id,
            "title": format!("{} on {}", e.check_id, e.resource.id),
            "description": e.message,
            "props": props,
            "methods": ["TEST"],
            "subjects": [{ "subject-uuid": subject, "type": "inventory-item", "title": format!("{} {}", e.resource.kind, e.resource.id) }],
            "relevant-evidence": [{ "description": format!("Collected by {} at {}", if e.collector.is_empty() { "compliance-rs" } else { &e.collector }, e.observed_at.to_rfc3339()) }],
            "collected": e.observed_at.to_rfc3339(),
        }));
    }
    let mut findings = Vec::new();
    let mut reviewed = Vec::new();
    for f in &report.frameworks {
        for c in &f.controls {
            if c.status == ControlStatus::NotAssessed {
                continue;
            }
            let token = control_token(&f.id, &c.id);
            reviewed.push(json!({ "control-id": token }));
            let related: Vec<Value> = report
                .evidence
                .iter()
                .filter(|e| c.checks.contains(&e.check_id) && e.status != Status::NotApplicable)
                .filter_map(|e| observation_of.get(&(e.check_id.as_str(), e.resource.id.as_str())))
                .map(|id| json!({ "observation-uuid": id }))
                .collect();
            let (state, reason) = match c.status {
                ControlStatus::Pass => ("satisfied", "pass"),
                ControlStatus::Fail => ("not-satisfied", "fail"),
                _ => ("not-satisfied", "other"),
            };
            let remarks = match c.status {
                ControlStatus::Waived => {
                    format!("{} failing evidence, every one covered by a waiver (accepted risk)", c.waived)
                }
                ControlStatus::Unknown => {
                    format!("{} evidence could not be judged: an evidence gap, not a pass", c.errors)
                }
                _ => {
                    format!("{} passing, {} failing, {} waived, {} not judged", c.passed, c.failed, c.waived, c.errors)
                }
            };
            let mut finding = json!({
                "uuid": Uuid::new_v4(),
                "title": format!("{} {}", f.name, c.id),
                "description": c.title,
                "props": [prop("framework", &f.id), prop("control-status", c.status.as_str())],
                "target": { "type": "objective-id", "target-id": token, "status": { "state": state, "reason": reason }, "remarks": remarks },
            });
            if !related.is_empty() {
                finding["related-observations"] = Value::Array(related);
            }
            findings.push(finding);
        }
    }
    let selection =
        if reviewed.is_empty() { json!({ "include-all": {} }) } else { json!({ "include-controls": reviewed }) };
    let mut result = json!({
        "uuid": report.run_id,
        "title": format!("compliance-rs run {}", report.run_id),
        "description": report.summary_line(),
        "start": report.started_at.to_rfc3339(),
        "end": report.finished_at.to_rfc3339(),
        "props": [prop("compliance-percentage", &format!("{:.2}", report.compliance_percentage))],
        "reviewed-controls": { "control-selections": [selection] },
    });
    if !observations.is_empty() {
        result["observations"] = Value::Array(observations);
    }
    if !findings.is_empty() {
        result["findings"] = Value::Array(findings);
    }
    json!({
        "assessment-results": {
            "uuid": Uuid::new_v4(),
            "metadata": {
                "title": "compliance-rs assessment results",
                "last-modified": report.generated_at.to_rfc3339(),
                "version": report.schema_version,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": { "href": format!("urn:compliance-rs:assessment-plan:{}", report.run_id),
                "remarks": "compliance-rs runs its configured collectors and checks; the plan is the scan's configuration." },
            "results": [result],
        }
    })
}
