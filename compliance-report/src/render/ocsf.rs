//! OCSF 1.5 Compliance Finding events (class 2003, category Findings), one
//! per evidence, as a JSON array. This is the OCSF class made for the result
//! of a control check; its `compliance` object carries the standards and
//! requirements our framework mappings give each check.
//!
//! Events are written one by one, never held together in memory.

use std::collections::BTreeMap;
use std::io::Write;

use compliance_core::{Evidence, Severity, Status};
use serde_json::{Map, Value, json};

use super::policyreport::controls_by_check;
use crate::model::Report;

/// OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.5.0";

const CLASS_UID: u32 = 2003;
const CATEGORY_UID: u32 = 2;
/// Create: each run reports its findings afresh.
const ACTIVITY_CREATE: u32 = 1;

pub(super) fn write_ocsf(report: &Report, out: &mut dyn Write) -> Result<(), String> {
    let controls = controls_by_check(report);
    let names: BTreeMap<&str, String> =
        report.frameworks.iter().map(|f| (f.id.as_str(), format!("{} {}", f.name, f.version))).collect();
    out.write_all(b"[").map_err(|e| e.to_string())?;
    for (i, e) in report.evidence.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n").map_err(|e| e.to_string())?;
        }
        let mut standards: Vec<&str> = Vec::new();
        let mut requirements: Vec<String> = Vec::new();
        for (framework, control) in controls.get(&e.check_id).into_iter().flatten() {
            let name = names.get(framework).map_or(*framework, String::as_str);
            if !standards.contains(&name) {
                standards.push(name);
            }
            requirements.push(format!("{name} {control}"));
        }
        serde_json::to_writer(&mut *out, &event(report, e, standards, requirements)).map_err(|e| e.to_string())?;
    }
    out.write_all(b"]\n").map_err(|e| e.to_string())
}

fn event(report: &Report, e: &Evidence, standards: Vec<&str>, requirements: Vec<String>) -> Value {
    let check = report.check(e);
    let title = check.map_or(e.check_id.as_str(), |c| c.title.as_str());
    let time = e.observed_at.timestamp_millis();
    let (severity_id, severity) = severity(e.severity);
    let (compliance_id, compliance_caption) = match e.status {
        Status::Pass => (1, "Pass"),
        Status::Fail => (3, "Fail"),
        // OCSF's Warning: "no result due to missing information".
        Status::Error => (2, "Warning"),
        Status::NotApplicable => (99, "Not Applicable"),
    };
    // A waived failure is a suppressed finding: known, accepted, not acted on.
    let (status_id, status) = if e.waiver.is_some() { (3, "Suppressed") } else { (1, "New") };

    let mut finding_info = json!({
        // Stable across runs: the same check on the same resource is the same finding.
        "uid": format!("{}:{}", e.check_id, e.resource.id),
        "title": title,
        "types": [e.resource.kind],
        "created_time": time,
    });
    if let Some(rationale) = check.map(|c| c.rationale.as_str()).filter(|r| !r.is_empty()) {
        finding_info["desc"] = json!(rationale);
    }

    let mut resource = Map::new();
    resource.insert("uid".into(), json!(e.resource.id));
    resource.insert("name".into(), json!(e.resource.name));
    resource.insert("type".into(), json!(e.resource.kind));
    if let Some(ns) = &e.resource.namespace {
        resource.insert("namespace".into(), json!(ns));
    }
    if let Some(region) = &e.resource.region {
        resource.insert("region".into(), json!(region));
    }
    if !e.resource.labels.is_empty() {
        let labels: Vec<String> = e.resource.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        resource.insert("labels".into(), json!(labels));
    }
    let mut data = Map::new();
    data.insert("provider".into(), json!(e.resource.provider));
    for (key, value) in [("account", &e.resource.account), ("cluster", &e.resource.cluster), ("file", &e.resource.file)]
    {
        if let Some(value) = value {
            data.insert(key.into(), json!(value));
        }
    }
    if let Some(line) = e.resource.line {
        data.insert("line".into(), json!(line));
    }
    resource.insert("data".into(), Value::Object(data));

    let mut unmapped = json!({"collector": &*e.collector, "run_id": report.run_id.to_string()});
    if e.details.as_object().is_some_and(|d| !d.is_empty()) {
        unmapped["details"] = e.details.clone();
    }
    if let Some(w) = &e.waiver {
        unmapped["waiver"] =
            json!({"id": w.id, "owner": w.owner, "reason": w.reason, "expires": w.expires.to_rfc3339()});
    }

    let mut event = json!({
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Compliance Finding: Create",
        "time": time,
        "time_dt": e.observed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "message": e.message,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "compliance-rs", "vendor_name": "compliance-rs", "version": env!("CARGO_PKG_VERSION")},
            "event_code": e.check_id.as_str(),
            "correlation_uid": report.run_id.to_string(),
        },
        "finding_info": finding_info,
        "compliance": {
            "control": e.check_id.as_str(),
            "standards": standards,
            "requirements": requirements,
            "status_id": compliance_id,
            "checks": [{
                "uid": e.check_id.as_str(),
                "name": title,
                "severity_id": severity_id,
                "severity": severity,
                "status_id": compliance_id,
                "status": compliance_caption,
            }],
        },
        "resources": [resource],
        "unmapped": unmapped,
    });
    if let Some(remediation) = e.remediation.as_deref().filter(|r| !r.is_empty()) {
        let mut object = json!({"desc": remediation});
        if let Some(references) = check.map(|c| &c.references).filter(|r| !r.is_empty()) {
            object["references"] = json!(references);
        }
        event["remediation"] = object;
    }
    event
}

fn severity(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}
