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

/// Ids unique within one document, derived from a random seed and a
/// counter (a system call per UUID would dominate a large report).
struct Ids(u128);

impl Ids {
    fn new() -> Self {
        Self(Uuid::new_v4().as_u128())
    }

    fn get(&self, n: u128) -> Uuid {
        // splitmix-style mixing, so that ids do not look sequential.
        let mut x = self.0 ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        x ^= x >> 67;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9_94D0_49BB_1331_11EB);
        x ^= x >> 59;
        uuid::Builder::from_random_bytes(x.to_be_bytes()).into_uuid()
    }

    fn observation(&self, index: usize) -> Uuid {
        self.get(index as u128 * 2)
    }

    fn subject(&self, resource: &str) -> Uuid {
        // FNV-1a: stable per resource within the document.
        let hash =
            resource.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        self.get((u128::from(hash) << 1) | 1)
    }
}

struct Observations<'a> {
    report: &'a Report,
    ids: &'a Ids,
}

#[derive(serde::Serialize)]
struct Prop<'a> {
    name: &'static str,
    ns: &'static str,
    value: &'a str,
}

#[derive(serde::Serialize)]
struct Subject {
    #[serde(rename = "subject-uuid")]
    subject_uuid: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
}

#[derive(serde::Serialize)]
struct RelevantEvidence {
    description: String,
}

#[derive(serde::Serialize)]
struct Observation<'a> {
    uuid: Uuid,
    title: String,
    description: &'a str,
    props: Vec<Prop<'a>>,
    methods: [&'static str; 1],
    subjects: [Subject; 1],
    #[serde(rename = "relevant-evidence")]
    relevant_evidence: [RelevantEvidence; 1],
    collected: String,
}

impl serde::Serialize for Observations<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = |name: &'static str, value| Prop { name, ns: NS, value };
        serializer.collect_seq(self.report.evidence.iter().enumerate().map(|(i, e)| {
            let mut props = vec![
                p("check-id", e.check_id.as_str()),
                p("status", e.status.as_str()),
                p("severity", e.severity.as_str()),
            ];
            if let Some(w) = &e.waiver {
                props.push(p("waiver", &w.id));
            }
            let collected = e.observed_at.to_rfc3339();
            let collector = if e.collector.is_empty() { "compliance-rs" } else { &e.collector };
            Observation {
                uuid: self.ids.observation(i),
                title: format!("{} on {}", e.check_id, e.resource.id),
                description: &e.message,
                props,
                methods: ["TEST"],
                subjects: [Subject {
                    subject_uuid: self.ids.subject(&e.resource.id),
                    kind: "inventory-item",
                    title: format!("{} {}", e.resource.kind, e.resource.id),
                }],
                relevant_evidence: [RelevantEvidence {
                    description: format!("Collected by {collector} at {collected}"),
                }],
                collected,
            }
        }))
    }
}

fn findings(report: &Report, ids: &Ids) -> (Vec<Value>, Vec<Value>) {
    let mut by_check: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in report.evidence.iter().enumerate() {
        if e.status != Status::NotApplicable {
            by_check.entry(e.check_id.as_str()).or_default().push(i);
        }
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
            let related: Vec<Value> = c
                .checks
                .iter()
                .filter_map(|check| by_check.get(check.as_str()))
                .flatten()
                .map(|i| json!({ "observation-uuid": ids.observation(*i) }))
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
    (findings, reviewed)
}

/// Streams the report as an OSCAL assessment-results document.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> serde_json::Result<()> {
    use serde::ser::{SerializeMap, Serializer};
    let ids = Ids::new();
    let (findings, reviewed) = findings(report, &ids);
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
    if !findings.is_empty() {
        result["findings"] = Value::Array(findings);
    }
    struct Result<'a> {
        head: Value,
        observations: Option<Observations<'a>>,
    }
    impl serde::Serialize for Result<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
            let head = self.head.as_object();
            let mut map = serializer.serialize_map(None)?;
            for (k, v) in head.into_iter().flatten() {
                map.serialize_entry(k, v)?;
            }
            if let Some(o) = &self.observations {
                map.serialize_entry("observations", o)?;
            }
            map.end()
        }
    }
    let observations = (!report.evidence.is_empty()).then_some(Observations { report, ids: &ids });
    let document = json!({
        "uuid": Uuid::new_v4(),
        "metadata": {
            "title": "compliance-rs assessment results",
            "last-modified": report.generated_at.to_rfc3339(),
            "version": report.schema_version,
            "oscal-version": OSCAL_VERSION,
        },
        "import-ap": { "href": format!("urn:compliance-rs:assessment-plan:{}", report.run_id),
            "remarks": "compliance-rs runs its configured collectors and checks; the plan is the scan's configuration." },
    });
    let mut serializer = serde_json::Serializer::new(out);
    let mut outer = serializer.serialize_map(Some(1))?;
    struct Body<'a> {
        head: &'a Value,
        result: Result<'a>,
    }
    impl serde::Serialize for Body<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            for (k, v) in self.head.as_object().into_iter().flatten() {
                map.serialize_entry(k, v)?;
            }
            map.serialize_entry("results", &[&self.result])?;
            map.end()
        }
    }
    outer.serialize_entry(
        "assessment-results",
        &Body { head: &document, result: Result { head: result, observations } },
    )?;
    outer.end()
}
