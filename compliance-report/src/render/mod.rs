//! Every output, rendered from one [`Report`]: JSON, Markdown, HTML, JUnit
//! XML, SARIF 2.1.0, CSV, OSCAL, Prometheus, Kubernetes policy reports, OCSF.
//!
//! This file holds [`Format`], [`Report::render`] and the writers, and what
//! the formats share; each format has its own file.

mod csv;
mod html;
mod junit;
mod markdown;
mod ocsf;
mod policyreport;
mod sarif;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use compliance_core::{Check, Evidence, Status};
use serde::{Deserialize, Serialize};

use crate::ReportError;
use crate::model::{Report, write_complete};

use self::csv::csv_rows;
use html::html;
use junit::junit;
use markdown::markdown;
use sarif::sarif;

pub use ocsf::OCSF_VERSION;
pub use policyreport::{PolicyReportApi, RESULTS_PER_REPORT, SOURCE as POLICY_REPORT_SOURCE, policy_reports};

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
    /// Kubernetes `wgpolicyk8s.io/v1alpha2` PolicyReports (one per
    /// namespace) and a ClusterPolicyReport, as a `v1` `List`.
    PolicyReport,
    /// The successor API, `openreports.io/v1alpha1` Reports and a
    /// ClusterReport, as a `v1` `List`.
    OpenReports,
    /// OCSF 1.5 Compliance Finding events (class 2003), one per evidence, as
    /// a JSON array.
    Ocsf,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 11] = [
        Format::Json,
        Format::Markdown,
        Format::Html,
        Format::Junit,
        Format::Sarif,
        Format::Csv,
        Format::Prometheus,
        Format::Oscal,
        Format::PolicyReport,
        Format::OpenReports,
        Format::Ocsf,
    ];

    /// The name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Junit => "junit",
            Format::Sarif => "sarif",
            Format::Csv => "csv",
            Format::Prometheus => "prometheus",
            Format::Oscal => "oscal",
            Format::PolicyReport => "policyreport",
            Format::OpenReports => "openreports",
            Format::Ocsf => "ocsf",
        }
    }

    /// How heavy the output is for a large report, to schedule the heaviest first.
    fn relative_cost(self) -> u8 {
        match self {
            Format::Oscal | Format::Ocsf => 8,
            Format::PolicyReport | Format::OpenReports => 6,
            Format::Json => 7,
            Format::Junit => 6,
            Format::Sarif => 5,
            Format::Csv => 4,
            Format::Html | Format::Markdown => 2,
            Format::Prometheus => 1,
        }
    }

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
            Format::PolicyReport => "policyreport.json",
            Format::OpenReports => "openreports.json",
            Format::Ocsf => "ocsf.json",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// ```
    /// use compliance_report::Format;
    /// assert_eq!("sarif".parse::<Format>(), Ok(Format::Sarif));
    /// assert!("pdf".parse::<Format>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format {s:?}; one of {}", names.join(", "))
        })
    }
}

impl Report {
    /// Renders the report in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, ReportError> {
        let mut out = Vec::new();
        self.render_to(format, &mut out)?;
        Ok(out)
    }

    /// Streams the report in `format` to `out`: large reports are written as
    /// they are serialised, never held whole in memory.
    pub fn render_to(&self, format: Format, out: &mut dyn std::io::Write) -> Result<(), ReportError> {
        let fail = |message: String| ReportError::Format { path: format.extension().into(), message };
        let io = |e: std::io::Error| fail(e.to_string());
        match format {
            // Indented for people up to 10,000 evidence; compact beyond, where
            // only programs read it and size and time matter.
            Format::Json if self.evidence.len() <= 10_000 => {
                serde_json::to_writer_pretty(&mut *out, self).map_err(|e| fail(e.to_string()))?
            }
            Format::Json => serde_json::to_writer(&mut *out, self).map_err(|e| fail(e.to_string()))?,
            Format::Markdown => out.write_all(markdown(self).as_bytes()).map_err(io)?,
            Format::Html => out.write_all(html(self).as_bytes()).map_err(io)?,
            Format::Junit => junit(self, out).map_err(io)?,
            Format::Sarif => serde_json::to_writer(&mut *out, &sarif(self)).map_err(|e| fail(e.to_string()))?,
            Format::Csv => csv_rows(self, out).map_err(fail)?,
            Format::Prometheus => {
                let failures = self.evidence.iter().filter(|e| e.is_unwaived_failure()).count();
                let openmetrics = crate::metrics::exposition(self, failures as u64).map_err(|e| fail(e.to_string()))?;
                out.write_all(crate::metrics::text_format(&openmetrics).as_bytes()).map_err(io)?;
            }
            Format::Oscal => crate::oscal::write(self, &mut *out).map_err(|e| fail(e.to_string()))?,
            Format::PolicyReport | Format::OpenReports => {
                let api = if format == Format::PolicyReport {
                    PolicyReportApi::WgPolicy
                } else {
                    PolicyReportApi::OpenReports
                };
                serde_json::to_writer(&mut *out, &policyreport::policy_report_list(self, api))
                    .map_err(|e| fail(e.to_string()))?
            }
            Format::Ocsf => ocsf::write_ocsf(self, out).map_err(fail)?,
        }
        Ok(())
    }

    /// Writes the report in `format` into `dir` as
    /// `compliance_report_<YYYYMMDD_HHMMSS>.<extension>` (never overwriting).
    pub fn write(&self, format: Format, dir: &Path) -> Result<PathBuf, ReportError> {
        write_complete(dir, &self.file_name(format), |out| self.render_to(format, out))
    }

    /// Writes the report in every format of `formats` into `dir`, one
    /// worker per core, the heaviest outputs first (measured with a million
    /// evidence: 1.8-2.0 s on two cores against 3.6-4.1 s one by one).
    /// Returns the paths in the order of `formats`.
    pub fn write_all(&self, formats: &[Format], dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let mut order: Vec<usize> = (0..formats.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(formats[*i].relative_cost()));
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(formats.len()).max(1);
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<PathBuf, ReportError>>>> =
            Mutex::new(formats.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let written = self.write(formats[i], dir);
                        if let Ok(mut slots) = results.lock() {
                            slots[i] = Some(written);
                        }
                    }
                });
            }
        });
        let slots = results.into_inner().unwrap_or_else(|p| p.into_inner());
        slots
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ReportError::Format {
                        path: dir.display().to_string(),
                        message: "an output renderer panicked".into(),
                    })
                })
            })
            .collect()
    }

    fn check(&self, evidence: &Evidence) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == evidence.check_id)
    }
}

/// Failures listed in the reports for people; beyond this, they point to
/// the JSON and CSV outputs, which list every one.
pub const PEOPLE_REPORT_MAX_FAILURES: usize = 5_000;

/// Targets the people reports show, worst first; the JSON report lists them all.
pub(super) const PEOPLE_REPORT_MAX_TARGETS: usize = 100;

/// The targets shown to people, and how many are left out.
pub(super) fn targets_for_people(r: &Report) -> (&[crate::TargetResult], usize) {
    let shown = r.targets.len().min(PEOPLE_REPORT_MAX_TARGETS);
    (&r.targets[..shown], r.targets.len() - shown)
}

/// A target's score per framework, as people read it: `soc2 80.0%, iso27001 75.0%`.
pub(super) fn target_scores(t: &crate::TargetResult) -> String {
    if t.scores.is_empty() {
        return "not assessed".to_owned();
    }
    t.scores.iter().map(|(f, s)| format!("{f} {s:.1}%")).collect::<Vec<_>>().join(", ")
}

/// The failures people see first: most severe first, at most
/// [`PEOPLE_REPORT_MAX_FAILURES`]; and how many were left out.
fn failures_for_people(report: &Report) -> (Vec<&Evidence>, usize) {
    let order = |a: &&Evidence, b: &&Evidence| {
        b.severity.cmp(&a.severity).then(a.check_id.cmp(&b.check_id)).then(a.resource.id.cmp(&b.resource.id))
    };
    let mut all: Vec<&Evidence> = failures(report).collect();
    let left_out = all.len().saturating_sub(PEOPLE_REPORT_MAX_FAILURES);
    if left_out > 0 {
        // Select the most severe in linear time; only they get sorted.
        all.select_nth_unstable_by(PEOPLE_REPORT_MAX_FAILURES - 1, order);
        all.truncate(PEOPLE_REPORT_MAX_FAILURES);
    }
    all.sort_by(order);
    (all, left_out)
}

/// Unjudged evidence listed in the reports for people (same limit).
fn unjudged_for_people(report: &Report) -> (impl Iterator<Item = &Evidence>, usize) {
    let total = report.evidence.iter().filter(|e| e.status == Status::Error).count();
    let shown = report.evidence.iter().filter(|e| e.status == Status::Error).take(PEOPLE_REPORT_MAX_FAILURES);
    (shown, total.saturating_sub(PEOPLE_REPORT_MAX_FAILURES))
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

/// Escapes `& < > "` (and `'` for XML), copying only when there is something to escape.
/// Escapes text for XML and HTML. Control characters that XML 1.0 does not
/// allow (all below U+0020 but tab, newline and carriage return) become
/// U+FFFD, so a message carrying one cannot make a report ill-formed.
fn escape(text: &str, apostrophe: bool) -> Cow<'_, str> {
    let forbidden = |c: char| c < ' ' && !matches!(c, '\t' | '\n' | '\r');
    let needs = |c: char| matches!(c, '&' | '<' | '>' | '"') || (apostrophe && c == '\'') || forbidden(c);
    if !text.contains(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' if apostrophe => out.push_str("&apos;"),
            c if forbidden(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::Format;

    /// Adding a format without listing it in `ALL` fails to compile here.
    fn position(f: Format) -> usize {
        match f {
            Format::Json => 0,
            Format::Markdown => 1,
            Format::Html => 2,
            Format::Junit => 3,
            Format::Sarif => 4,
            Format::Csv => 5,
            Format::Prometheus => 6,
            Format::Oscal => 7,
            Format::PolicyReport => 8,
            Format::OpenReports => 9,
            Format::Ocsf => 10,
        }
    }

    #[test]
    fn all_lists_every_format_once() {
        let positions: Vec<usize> = Format::ALL.iter().map(|f| position(*f)).collect();
        assert_eq!(positions, (0..Format::ALL.len()).collect::<Vec<_>>());
    }
}
