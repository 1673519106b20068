//! Every output, rendered from one [`Report`]: JSON, Markdown, HTML, JUnit
//! XML, SARIF 2.1.0, CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use compliance_core::{Check, Evidence, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ReportError;
use crate::model::{ControlStatus, Report, write_new};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// The versioned JSON report.
    Json,
    /// Markdown, for people and pull requests.
    Markdown,
    /// A self-contained HTML page.
    Html,
    /// JUnit XML: one test case per check and resource.
    Junit,
    /// SARIF 2.1.0: rules are checks, results are failures.
    Sarif,
    /// CSV: one row per evidence.
    Csv,
    /// The Prometheus text exposition of the report's metrics.
    Prometheus,
    /// OSCAL 1.1 assessment results (JSON).
    Oscal,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 6] =
        [Format::Json, Format::Markdown, Format::Html, Format::Junit, Format::Sarif, Format::Csv];

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Junit => "junit.xml",
            Format::Sarif => "sarif",
            Format::Csv => "csv",
            Format::Prometheus => "prom",
            Format::Oscal => "oscal.json",
        }
    }
}

impl Report {
    /// Renders the report in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, ReportError> {
        let fail = |message: String| ReportError::Format { path: format.extension().into(), message };
        Ok(match format {
            Format::Json => serde_json::to_vec_pretty(self).map_err(|e| fail(e.to_string()))?,
            Format::Markdown => markdown(self).into_bytes(),
            Format::Html => html(self).into_bytes(),
            Format::Junit => junit(self).into_bytes(),
            Format::Sarif => serde_json::to_vec_pretty(&sarif(self)).map_err(|e| fail(e.to_string()))?,
            Format::Csv => csv_rows(self).map_err(fail)?,
            Format::Oscal => {
                serde_json::to_vec_pretty(&crate::oscal::assessment_results(self)).map_err(|e| fail(e.to_string()))?
            }
            Format::Prometheus => {
                let failures = self.evidence.iter().filter(|e| e.is_unwaived_failure()).count();
                let openmetrics = crate::metrics::exposition(self, failures as u64).map_err(|e| fail(e.to_string()))?;
                crate::metrics::text_format(&openmetrics).into_bytes()
            }
        })
    }

    /// Writes the report in `format` into `dir` as
    /// `compliance_report_<YYYYMMDD_HHMMSS>.<extension>` (never overwriting).
    pub fn write(&self, format: Format, dir: &Path) -> Result<PathBuf, ReportError> {
        let name = format!("compliance_report_{}.{}", self.generated_at.format("%Y%m%d_%H%M%S"), format.extension());
        write_new(dir, &name, &self.render(format)?)
    }

    fn check(&self, evidence: &Evidence) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == evidence.check_id)
    }
}

fn failures(report: &Report) -> impl Iterator<Item = &Evidence> {
    report.evidence.iter().filter(|e| e.status == Status::Fail)
}

fn location(e: &Evidence) -> String {
    match (&e.resource.file, e.resource.line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        (Some(f), None) => f.clone(),
        _ => e.resource.id.clone(),
    }
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Compliance report\n");
    let _ = writeln!(
        out,
        "Run `{}`, {} to {} (UTC). Report schema {}.\n",
        r.run_id,
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.finished_at.format("%Y-%m-%d %H:%M:%S"),
        r.schema_version
    );
    let _ = writeln!(
        out,
        "**{:.1}% compliant**: {} of {} judged evidence pass; {} fail ({} waived), {} could not be judged, {} not applicable; {} gaps.\n",
        r.compliance_percentage,
        r.compliant,
        r.compliant + r.non_compliant,
        r.non_compliant,
        r.waived,
        r.errors,
        r.not_applicable,
        r.gaps.len()
    );
    if !r.frameworks.is_empty() {
        let _ = writeln!(
            out,
            "## Frameworks\n\n| framework | score | passed | failed | waived | unknown | not assessed |\n|---|---|---|---|---|---|---|"
        );
        for f in &r.frameworks {
            let n = |s: ControlStatus| f.controls.iter().filter(|c| c.status == s).count();
            let score = f.score_percentage.map_or("n/a".to_owned(), |s| format!("{s:.1}%"));
            let _ = writeln!(
                out,
                "| {} {} | {score} | {} | {} | {} | {} | {} |",
                md_escape(&f.name),
                md_escape(&f.version),
                n(ControlStatus::Pass),
                n(ControlStatus::Fail),
                n(ControlStatus::Waived),
                n(ControlStatus::Unknown),
                n(ControlStatus::NotAssessed)
            );
        }
        for f in &r.frameworks {
            let failing: Vec<_> = f.controls.iter().filter(|c| c.status == ControlStatus::Fail).collect();
            if failing.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n### Failing controls: {}\n", md_escape(&f.name));
            for c in failing {
                let _ = writeln!(out, "- **{}** {} ({} failing evidence)", c.id, md_escape(&c.title), c.failed);
            }
        }
    }
    let mut by_check: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    for e in failures(r) {
        by_check.entry(e.check_id.as_str()).or_default().push(e);
    }
    if !by_check.is_empty() {
        let _ = writeln!(out, "\n## Failures\n");
        for (check, list) in &by_check {
            let title = list.first().and_then(|e| r.check(e)).map(|c| c.title.as_str()).unwrap_or_default();
            let _ = writeln!(out, "### `{check}` ({}): {}\n", list[0].severity, md_escape(title));
            if let Some(fix) = list[0].remediation.as_deref() {
                let _ = writeln!(out, "Fix: {}\n", md_escape(fix));
            }
            let _ = writeln!(out, "| resource | where | finding | waiver |\n|---|---|---|---|");
            for e in list {
                let waiver = e
                    .waiver
                    .as_ref()
                    .map(|w| format!("{} ({}, until {})", w.id, w.owner, w.expires.format("%Y-%m-%d")))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} {} | {} | {} | {} |",
                    e.resource.kind,
                    md_escape(&e.resource.name),
                    md_escape(&location(e)),
                    md_escape(&e.message),
                    md_escape(&waiver)
                );
            }
            out.push('\n');
        }
    }
    if !r.gaps.is_empty() || r.errors > 0 {
        let _ = writeln!(out, "## Evidence gaps\n\nNot judged, and not counted as compliant.\n");
        for g in &r.gaps {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                g.collector,
                g.source.as_deref().unwrap_or("(whole collector)"),
                md_escape(&g.reason)
            );
        }
        for e in r.evidence.iter().filter(|e| e.status == Status::Error) {
            let _ = writeln!(out, "- `{}` on {}: {}", e.check_id, md_escape(&e.resource.id), md_escape(&e.message));
        }
    }
    for x in &r.expired_waivers {
        let _ = writeln!(
            out,
            "\nWaiver {} expired on {}: {} failures are no longer waived.",
            x.waiver.id,
            x.waiver.expires.format("%Y-%m-%d"),
            x.failures_no_longer_waived
        );
    }
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html(r: &Report) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Compliance report</h1><p class=meta>Run <code>{}</code> &middot; {} to {} UTC &middot; schema {}</p>",
        r.run_id,
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.finished_at.format("%Y-%m-%d %H:%M:%S"),
        html_escape(&r.schema_version)
    );
    let _ = write!(
        body,
        "<section class=summary><div class=big>{:.1}%</div><div>{} of {} judged evidence compliant<br>{} failing ({} waived) &middot; {} not judged &middot; {} not applicable &middot; {} gaps</div></section>",
        r.compliance_percentage,
        r.compliant,
        r.compliant + r.non_compliant,
        r.non_compliant,
        r.waived,
        r.errors,
        r.not_applicable,
        r.gaps.len()
    );
    if !r.frameworks.is_empty() {
        body.push_str("<h2>Frameworks</h2><p class=meta>Score: passed controls over assessed controls. Bars: assessed controls that passed, are waived, failed, or could not be judged.</p><div class=bars>");
        for f in &r.frameworks {
            let label = f.score_percentage.map_or("not assessed".to_owned(), |s| format!("{s:.1}%"));
            let n = |s: ControlStatus| f.controls.iter().filter(|c| c.status == s).count();
            let assessed = f.controls.len() - n(ControlStatus::NotAssessed);
            let mut segments = String::new();
            for (status, class) in [
                (ControlStatus::Pass, "pass"),
                (ControlStatus::Waived, "waived"),
                (ControlStatus::Fail, "fail"),
                (ControlStatus::Unknown, "unknown"),
            ] {
                let count = n(status);
                if count > 0 && assessed > 0 {
                    let width = count as f64 * 100.0 / assessed as f64;
                    let _ = write!(
                        segments,
                        "<span class=\"seg {class}\" style=\"width:{width:.1}%\" title=\"{count} {class}\"></span>"
                    );
                }
            }
            let _ = write!(
                body,
                "<div class=bar><span class=name>{} {}</span><span class=track>{segments}</span><span class=value>{label}</span></div>",
                html_escape(&f.name),
                html_escape(&f.version)
            );
        }
        body.push_str("</div>");
        for f in &r.frameworks {
            let _ = write!(
                body,
                "<details><summary>{} controls</summary><table><tr><th>control</th><th>title</th><th>status</th><th>pass</th><th>fail</th><th>waived</th><th>errors</th></tr>",
                html_escape(&f.name)
            );
            for c in &f.controls {
                let _ = write!(
                    body,
                    "<tr class={}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    c.status.as_str(),
                    html_escape(&c.id),
                    html_escape(&c.title),
                    c.status.as_str(),
                    c.passed,
                    c.failed,
                    c.waived,
                    c.errors
                );
            }
            body.push_str("</table></details>");
        }
    }
    let fails: Vec<&Evidence> = failures(r).collect();
    if !fails.is_empty() {
        body.push_str("<h2>Failures</h2><table><tr><th>severity</th><th>check</th><th>resource</th><th>where</th><th>finding</th><th>fix</th><th>waiver</th></tr>");
        let mut sorted = fails;
        sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check_id.cmp(&b.check_id)));
        for e in sorted {
            let waiver = e.waiver.as_ref().map(|w| format!("{} ({})", w.id, w.owner)).unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td class=sev-{}>{}</td><td><code>{}</code></td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.severity,
                e.severity,
                e.check_id,
                html_escape(&e.resource.kind),
                html_escape(&e.resource.name),
                html_escape(&location(e)),
                html_escape(&e.message),
                html_escape(e.remediation.as_deref().unwrap_or_default()),
                html_escape(&waiver)
            );
        }
        body.push_str("</table>");
    }
    if !r.gaps.is_empty() || r.errors > 0 {
        body.push_str("<h2>Evidence gaps</h2><p>Not judged, and not counted as compliant.</p><ul>");
        for g in &r.gaps {
            let _ = write!(
                body,
                "<li>{} {}: {}</li>",
                html_escape(&g.collector),
                html_escape(g.source.as_deref().unwrap_or("(whole collector)")),
                html_escape(&g.reason)
            );
        }
        for e in r.evidence.iter().filter(|e| e.status == Status::Error) {
            let _ = write!(
                body,
                "<li><code>{}</code> on {}: {}</li>",
                e.check_id,
                html_escape(&e.resource.id),
                html_escape(&e.message)
            );
        }
        body.push_str("</ul>");
    }
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Compliance report {}</title><style>{CSS}</style></head><body>{body}</body></html>\n",
        r.run_id
    )
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2430;padding:0 1rem}h1{margin-bottom:.2rem}.meta{color:#5b6678}\
.summary{display:flex;gap:1.5rem;align-items:center;background:#f3f5f8;border-radius:8px;padding:1rem 1.5rem}.big{font-size:2.6rem;font-weight:700}\
.bars{display:grid;gap:.5rem;margin:1rem 0}.bar{display:grid;grid-template-columns:18rem 1fr 6rem;gap:.75rem;align-items:center}.track{background:#e3e7ee;border-radius:4px;height:1rem;display:flex;overflow:hidden}\
.seg{height:1rem;display:inline-block}.seg.pass{background:#2f8f5b}.seg.waived{background:#d89c2b}.seg.fail{background:#c0392b}.seg.unknown{background:#98a2b3}.value{font-variant-numeric:tabular-nums}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}\
th,td{border-bottom:1px solid #e3e7ee;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f3f5f8;overflow-wrap:normal}td:first-child{white-space:nowrap}tr.fail td:nth-child(3){color:#b42318;font-weight:600}\
tr.pass td:nth-child(3){color:#2f8f5b}.sev-critical,.sev-high{color:#b42318;font-weight:600}.sev-medium{color:#b54708}code{font-size:.9em}details{margin:.5rem 0}";

fn xml_escape(text: &str) -> String {
    html_escape(text).replace('\'', "&apos;")
}

fn junit(r: &Report) -> String {
    let mut by_check: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    for e in &r.evidence {
        by_check.entry(e.check_id.as_str()).or_default().push(e);
    }
    let count = |s: Status| r.evidence.iter().filter(|e| e.status == s).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"compliance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
        r.evidence.len(),
        count(Status::Fail),
        count(Status::Error),
        count(Status::NotApplicable),
        r.generated_at.to_rfc3339()
    );
    for (check, list) in by_check {
        let n = |s: Status| list.iter().filter(|e| e.status == s).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            xml_escape(check),
            list.len(),
            n(Status::Fail),
            n(Status::Error),
            n(Status::NotApplicable)
        );
        for e in list {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\">",
                xml_escape(check),
                xml_escape(&e.resource.id),
                xml_escape(&location(e))
            );
            match e.status {
                Status::Fail => {
                    let waived = e.waiver.as_ref().map(|w| format!(" (waived: {})", w.id)).unwrap_or_default();
                    let _ = write!(
                        out,
                        "<failure type=\"{}\" message=\"{}{}\">{}</failure>",
                        e.severity,
                        xml_escape(&e.message),
                        xml_escape(&waived),
                        xml_escape(e.remediation.as_deref().unwrap_or_default())
                    );
                }
                Status::Error => {
                    let _ = write!(out, "<error type=\"evidence-gap\" message=\"{}\"/>", xml_escape(&e.message));
                }
                Status::NotApplicable => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml_escape(&e.message));
                }
                Status::Pass => {}
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn sarif_level(e: &Evidence) -> &'static str {
    match e.severity {
        compliance_core::Severity::Critical | compliance_core::Severity::High => "error",
        compliance_core::Severity::Medium => "warning",
        _ => "note",
    }
}

fn sarif(r: &Report) -> Value {
    let rules: Vec<Value> = r
        .checks
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.id.as_str().replace('.', "_"),
                "shortDescription": { "text": c.title },
                "fullDescription": { "text": if c.rationale.is_empty() { c.title.clone() } else { c.rationale.clone() } },
                "help": { "text": &*c.remediation },
                "properties": { "severity": c.severity, "tags": c.references },
            })
        })
        .collect();
    let index: BTreeMap<&str, usize> = r.checks.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    let results: Vec<Value> = failures(r)
        .map(|e| {
            let mut result = json!({
                "ruleId": e.check_id,
                "level": sarif_level(e),
                "message": { "text": format!("{} {}: {}", e.resource.kind, e.resource.name, e.message) },
                "properties": { "resource": e.resource.id, "severity": e.severity, "details": e.details },
            });
            if let Some(i) = index.get(e.check_id.as_str()) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(file) = &e.resource.file {
                let mut physical = json!({ "artifactLocation": { "uri": file } });
                if let Some(line) = e.resource.line {
                    physical["region"] = json!({ "startLine": line });
                }
                result["locations"] = json!([{ "physicalLocation": physical }]);
            } else {
                result["locations"] = json!([{ "logicalLocations": [{ "fullyQualifiedName": e.resource.id, "kind": "resource" }] }]);
            }
            if let Some(w) = &e.waiver {
                result["suppressions"] = json!([{ "kind": "external", "justification": format!("{}: {} (owner {}, until {})", w.id, w.reason, w.owner, w.expires.to_rfc3339()) }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "compliance-rs", "informationUri": "https://github.com/compliance-rs/compliance-rs", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "automationDetails": { "id": format!("compliance/{}", r.run_id) },
            "results": results,
        }]
    })
}

fn csv_rows(r: &Report) -> Result<Vec<u8>, String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "check_id",
        "status",
        "severity",
        "provider",
        "kind",
        "resource_id",
        "name",
        "namespace",
        "file",
        "line",
        "account",
        "region",
        "observed_at",
        "message",
        "remediation",
        "waiver_id",
    ];
    writer.write_record(header).map_err(|e| e.to_string())?;
    for e in &r.evidence {
        let res = &e.resource;
        let line = res.line.map(|l| l.to_string()).unwrap_or_default();
        let observed = e.observed_at.to_rfc3339();
        writer
            .write_record([
                e.check_id.as_str(),
                e.status.as_str(),
                e.severity.as_str(),
                &res.provider,
                &res.kind,
                &res.id,
                &res.name,
                res.namespace.as_deref().unwrap_or_default(),
                res.file.as_deref().unwrap_or_default(),
                &line,
                res.account.as_deref().unwrap_or_default(),
                res.region.as_deref().unwrap_or_default(),
                &observed,
                &e.message,
                e.remediation.as_deref().unwrap_or_default(),
                e.waiver.as_ref().map(|w| w.id.as_str()).unwrap_or_default(),
            ])
            .map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}
