//! SARIF 2.1.0: rules are checks, results are failures.

use std::borrow::Cow;
use std::collections::BTreeMap;

use compliance_core::Evidence;
use serde::Serialize;
use serde_json::{Value, json};

use super::failures;
use crate::model::Report;

fn sarif_level(e: &Evidence) -> &'static str {
    match e.severity {
        compliance_core::Severity::Critical | compliance_core::Severity::High => "error",
        compliance_core::Severity::Medium => "warning",
        _ => "note",
    }
}

#[derive(Serialize)]
struct Text<'a> {
    text: Cow<'a, str>,
}

impl<'a> Text<'a> {
    fn of(text: &'a str) -> Self {
        Self { text: Cow::Borrowed(text) }
    }
}

/// SARIF 2.1.0, serialised straight from the report: rules are checks,
/// results are failures.
#[derive(Serialize)]
pub(super) struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<'a>; 1],
}

#[derive(Serialize)]
struct SarifRun<'a> {
    tool: SarifTool<'a>,
    #[serde(rename = "automationDetails")]
    automation_details: Value,
    results: SarifResults<'a>,
}

#[derive(Serialize)]
struct SarifTool<'a> {
    driver: SarifDriver<'a>,
}

#[derive(Serialize)]
struct SarifDriver<'a> {
    name: &'static str,
    #[serde(rename = "informationUri")]
    information_uri: &'static str,
    version: &'static str,
    rules: Vec<SarifRule<'a>>,
}

#[derive(Serialize)]
struct SarifRule<'a> {
    id: &'a str,
    name: String,
    #[serde(rename = "shortDescription")]
    short_description: Text<'a>,
    #[serde(rename = "fullDescription")]
    full_description: Text<'a>,
    help: Text<'a>,
    properties: Value,
}

#[derive(Serialize)]
struct SarifResult<'a> {
    #[serde(rename = "ruleId")]
    rule_id: &'a str,
    #[serde(rename = "ruleIndex", skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: Text<'a>,
    locations: [Value; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressions: Option<Value>,
    properties: SarifProperties<'a>,
}

#[derive(Serialize)]
struct SarifProperties<'a> {
    resource: &'a str,
    severity: compliance_core::Severity,
    details: &'a Value,
}

/// A file path as a SARIF `artifactLocation.uri`: an absolute path becomes
/// an absolute `file://` URI (SARIF wants a relative reference only with a
/// base), a relative one stays relative; `/` separates segments, and what a
/// URI reserves (space, `%`, `#`, `?`, non-ASCII) is percent-encoded.
fn file_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut encoded = String::with_capacity(path.len() + 8);
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' | b'@' | b'+' | b'=' => {
                encoded.push(char::from(byte))
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    if path.starts_with('/') { format!("file://{encoded}") } else { encoded }
}

/// The failures, serialised one by one.
struct SarifResults<'a> {
    report: &'a Report,
    rule_index: BTreeMap<&'a str, usize>,
}

impl Serialize for SarifResults<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(failures(self.report).map(|e| {
            let location = match &e.resource.file {
                Some(file) => {
                    let mut physical = json!({ "artifactLocation": { "uri": file_uri(file) } });
                    if let Some(line) = e.resource.line {
                        physical["region"] = json!({ "startLine": line });
                    }
                    json!({ "physicalLocation": physical })
                }
                None => json!({ "logicalLocations": [{ "fullyQualifiedName": e.resource.id, "kind": "resource" }] }),
            };
            SarifResult {
                rule_id: e.check_id.as_str(),
                rule_index: self.rule_index.get(e.check_id.as_str()).copied(),
                level: sarif_level(e),
                message: Text { text: Cow::Owned(format!("{} {}: {}", e.resource.kind, e.resource.name, e.message)) },
                locations: [location],
                suppressions: e.waiver.as_ref().map(|w| {
                    json!([{ "kind": "external", "justification": format!("{}: {} (owner {}, until {})", w.id, w.reason, w.owner, w.expires.to_rfc3339()) }])
                }),
                properties: SarifProperties { resource: &e.resource.id, severity: e.severity, details: &e.details },
            }
        }))
    }
}

pub(super) fn sarif(r: &Report) -> SarifLog<'_> {
    let rules = r
        .checks
        .iter()
        .map(|c| SarifRule {
            id: c.id.as_str(),
            name: c.id.as_str().replace('.', "_"),
            short_description: Text::of(&c.title),
            full_description: Text::of(if c.rationale.is_empty() { &c.title } else { &c.rationale }),
            help: Text::of(&c.remediation),
            properties: json!({ "severity": c.severity, "tags": c.references }),
        })
        .collect();
    SarifLog {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: "compliance-rs",
                    information_uri: "https://github.com/compliance-rs/compliance-rs",
                    version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            automation_details: json!({ "id": format!("compliance/{}", r.run_id) }),
            results: SarifResults {
                report: r,
                rule_index: r.checks.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect(),
            },
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::file_uri;

    #[test]
    fn paths_become_uris_sarif_accepts() {
        assert_eq!(file_uri("deploy/app.yaml"), "deploy/app.yaml");
        assert_eq!(file_uri("/srv/repo/deploy/app.yaml"), "file:///srv/repo/deploy/app.yaml");
        assert_eq!(file_uri("/srv/my repo/a#b?.yaml"), "file:///srv/my%20repo/a%23b%3F.yaml");
        assert_eq!(file_uri("dir/naïve.tf"), "dir/na%C3%AFve.tf");
    }
}
