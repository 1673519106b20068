//! Every output, rendered from one [`Report`]: JSON, Markdown, HTML, JUnit
//! XML, SARIF 2.1.0, CSV.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use compliance_core::{Check, Evidence, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ReportError;
use crate::model::{ControlStatus, Report, create_new};

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
    pub const ALL: [Format; 8] = [
        Format::Json,
        Format::Markdown,
        Format::Html,
        Format::Junit,
        Format::Sarif,
        Format::Csv,
        Format::Prometheus,
        Format::Oscal,
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
        }
    }

    /// How heavy the output is for a large report, to schedule the heaviest first.
    fn relative_cost(self) -> u8 {
        match self {
            Format::Oscal => 8,
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
        }
        Ok(())
    }

    /// Writes the report in `format` into `dir` as
    /// `compliance_report_<YYYYMMDD_HHMMSS>.<extension>` (never overwriting).
    pub fn write(&self, format: Format, dir: &Path) -> Result<PathBuf, ReportError> {
        use std::io::Write;
        let (path, file) = create_new(dir, &self.file_name(format))?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        self.render_to(format, &mut writer)?;
        writer.flush().map_err(|source| ReportError::Write { path: path.display().to_string(), source })?;
        Ok(path)
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
    if !r.check_results.is_empty() {
        let _ = writeln!(
            out,
            "\n## Checks\n\n| check | score | pass | fail | waived | not judged | n/a |\n|---|---|---|---|---|---|---|"
        );
        for c in &r.check_results {
            let score = c.score_percentage.map_or("n/a".to_owned(), |s| format!("{s:.1}%"));
            let _ = writeln!(
                out,
                "| `{}` | {score} | {} | {} | {} | {} | {} |",
                c.check_id, c.passed, c.failed, c.waived, c.errors, c.not_applicable
            );
        }
    }
    let (shown, left_out) = failures_for_people(r);
    let mut by_check: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    for e in shown {
        by_check.entry(e.check_id.as_str()).or_default().push(e);
    }
    if !by_check.is_empty() {
        let _ = writeln!(out, "\n## Failures\n");
        if left_out > 0 {
            let _ = writeln!(
                out,
                "The {} most severe failures; {left_out} more are in the JSON and CSV reports.\n",
                PEOPLE_REPORT_MAX_FAILURES
            );
        }
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
        let (unjudged, more) = unjudged_for_people(r);
        if more > 0 {
            let _ = writeln!(out, "- and {more} more unjudged evidence: see the JSON and CSV reports");
        }
        for e in unjudged {
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

fn html_escape(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Escapes `& < > "` (and `'` for XML), copying only when there is something to escape.
fn escape(text: &str, apostrophe: bool) -> Cow<'_, str> {
    let needs = |c: char| matches!(c, '&' | '<' | '>' | '"') || (apostrophe && c == '\'');
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
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
    let (shown, left_out) = failures_for_people(r);
    if !shown.is_empty() {
        body.push_str("<h2>Failures</h2>");
        if left_out > 0 {
            let _ = write!(
                body,
                "<p class=meta>The {} most severe of {} failures; the JSON and CSV reports list all of them.</p>",
                shown.len(),
                shown.len() + left_out
            );
        }
        body.push_str("<table><tr><th>severity</th><th>check</th><th>resource</th><th>where</th><th>finding</th><th>fix</th><th>waiver</th></tr>");
        for e in shown {
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
        let (unjudged, more) = unjudged_for_people(r);
        if more > 0 {
            let _ = write!(body, "<li>and {more} more unjudged evidence: see the JSON and CSV reports</li>");
        }
        for e in unjudged {
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

fn xml_escape(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn junit(r: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut by_check: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    for e in &r.evidence {
        by_check.entry(e.check_id.as_str()).or_default().push(e);
    }
    let count = |s: Status| r.evidence.iter().filter(|e| e.status == s).count();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"compliance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
        r.evidence.len(),
        count(Status::Fail),
        count(Status::Error),
        count(Status::NotApplicable),
        r.generated_at.to_rfc3339()
    )?;
    for (check, list) in by_check {
        let n = |s: Status| list.iter().filter(|e| e.status == s).count();
        let check = xml_escape(check);
        writeln!(
            out,
            "  <testsuite name=\"{check}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            list.len(),
            n(Status::Fail),
            n(Status::Error),
            n(Status::NotApplicable)
        )?;
        for e in list {
            write!(
                out,
                "    <testcase classname=\"{check}\" name=\"{}\" file=\"{}\">",
                xml_escape(&e.resource.id),
                xml_escape(&location(e))
            )?;
            match e.status {
                Status::Fail => {
                    let waived = e.waiver.as_ref().map(|w| format!(" (waived: {})", w.id)).unwrap_or_default();
                    write!(
                        out,
                        "<failure type=\"{}\" message=\"{}{}\">{}</failure>",
                        e.severity,
                        xml_escape(&e.message),
                        xml_escape(&waived),
                        xml_escape(e.remediation.as_deref().unwrap_or_default())
                    )?;
                }
                Status::Error => write!(out, "<error type=\"evidence-gap\" message=\"{}\"/>", xml_escape(&e.message))?,
                Status::NotApplicable => write!(out, "<skipped message=\"{}\"/>", xml_escape(&e.message))?,
                Status::Pass => {}
            }
            out.write_all(b"</testcase>\n")?;
        }
        out.write_all(b"  </testsuite>\n")?;
    }
    out.write_all(b"</testsuites>\n")
}

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
struct SarifLog<'a> {
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
                    let mut physical = json!({ "artifactLocation": { "uri": file } });
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

fn sarif(r: &Report) -> SarifLog<'_> {
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

fn csv_rows(r: &Report, out: &mut dyn std::io::Write) -> Result<(), String> {
    let mut writer = csv::Writer::from_writer(out);
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
    writer.flush().map_err(|e| e.to_string())
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
        }
    }

    #[test]
    fn all_lists_every_format_once() {
        let positions: Vec<usize> = Format::ALL.iter().map(|f| position(*f)).collect();
        assert_eq!(positions, (0..Format::ALL.len()).collect::<Vec<_>>());
    }
}
