//! The report model, built once from a run; every output renders from it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use compliance_core::{CheckId, Evidence, ExpiredWaiver, Framework, Gap, Status};
use serde::{Deserialize, Serialize};

use crate::ReportError;

/// Version of the JSON report schema. Additive changes bump the minor part;
/// a change that breaks readers bumps the major part.
pub const SCHEMA_VERSION: &str = "1.2.0";

/// The result of one control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Every judged evidence passed.
    Pass,
    /// At least one failure that no waiver covers.
    Fail,
    /// Failures, all of them waived.
    Waived,
    /// Only errors: the control could not be judged.
    Unknown,
    /// No evidence at all (or only not-applicable).
    NotAssessed,
}

impl ControlStatus {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlStatus::Pass => "pass",
            ControlStatus::Fail => "fail",
            ControlStatus::Waived => "waived",
            ControlStatus::Unknown => "unknown",
            ControlStatus::NotAssessed => "not_assessed",
        }
    }
}

/// One control's result in a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlResult {
    /// Control id.
    pub id: String,
    /// Control title.
    pub title: String,
    /// Result.
    pub status: ControlStatus,
    /// Checks that support the control.
    pub checks: Vec<CheckId>,
    /// Passing evidence.
    pub passed: usize,
    /// Failing evidence no waiver covers.
    pub failed: usize,
    /// Failing evidence covered by a waiver.
    pub waived: usize,
    /// Evidence that could not be judged.
    pub errors: usize,
}

/// One check's result in a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckResult {
    /// The check.
    pub check_id: CheckId,
    /// Passing resources.
    pub passed: usize,
    /// Failing resources no waiver covers.
    pub failed: usize,
    /// Failing resources covered by a waiver.
    pub waived: usize,
    /// Resources that could not be judged.
    pub errors: usize,
    /// Resources the check does not apply to.
    pub not_applicable: usize,
    /// Passed over judged resources, in percent; `null` when none was judged.
    pub score_percentage: Option<f64>,
}

/// One framework's result in a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FrameworkResult {
    /// Framework id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version of the standard.
    pub version: String,
    /// Passed controls over assessed controls (every control with evidence
    /// other than not-applicable), in percent; `null` when none was assessed.
    pub score_percentage: Option<f64>,
    /// Per-control results.
    pub controls: Vec<ControlResult>,
}

/// A report: the JSON contract of DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// The run's id.
    pub run_id: uuid::Uuid,
    /// When the report was made (UTC).
    pub generated_at: DateTime<Utc>,
    /// When the run started (UTC).
    pub started_at: DateTime<Utc>,
    /// When the run finished (UTC).
    pub finished_at: DateTime<Utc>,
    /// Compliant evidence over judged (pass or fail) evidence, in percent, as
    /// the blog post the project grew from computes it; 0 when nothing was judged. Errors are not in
    /// it: see `errors` and `gaps`.
    pub compliance_percentage: f64,
    /// All evidence.
    pub total_evidence: usize,
    /// Passing evidence.
    pub compliant: usize,
    /// Failing evidence, waived or not.
    pub non_compliant: usize,
    /// Failing evidence covered by a waiver (included in `non_compliant`).
    pub waived: usize,
    /// Evidence that could not be judged.
    pub errors: usize,
    /// Evidence that does not apply.
    pub not_applicable: usize,
    /// Per-check results, by check id (added in schema 1.1).
    #[serde(default)]
    pub check_results: Vec<CheckResult>,
    /// Per-framework results.
    pub frameworks: Vec<FrameworkResult>,
    /// Collectors or sources that could not be read, with the reason.
    pub gaps: Vec<Gap>,
    /// Waivers that had expired.
    pub expired_waivers: Vec<ExpiredWaiver>,
    /// The metadata of every check that could produce evidence in the run
    /// (added in schema 1.1).
    #[serde(default)]
    pub checks: Vec<compliance_core::Check>,
    /// What changed since the previous report, when one was given (added in
    /// schema 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<crate::Delta>,
    /// Controls the run's sources declared for checks (an AWS Config
    /// conformance pack's `Controls`), mapped into `frameworks` where a
    /// framework has them (added in schema 1.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_controls: Vec<compliance_core::DeclaredControl>,
    /// The AWS accounts, AWS regions and Kubernetes clusters the run
    /// reached, worst first, each with its counts, gaps and scores (added in
    /// schema 1.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::TargetResult>,
    /// Every evidence.
    pub evidence: Vec<Evidence>,
}

impl Report {
    /// Builds the report of a run against the given frameworks.
    pub fn from_run(run: &compliance_core::Run, frameworks: &[Arc<dyn Framework>]) -> Self {
        Self::from_owned_run(run.clone(), frameworks)
    }

    /// Like [`Report::from_run`], taking the run: its evidence is moved, not
    /// copied (a million records cost a gigabyte).
    /// Controls the run's sources declared ([`compliance_core::DeclaredControl`])
    /// are mapped with the frameworks' own.
    pub fn from_owned_run(run: compliance_core::Run, frameworks: &[Arc<dyn Framework>]) -> Self {
        let frameworks = compliance_core::framework::with_declared_controls(frameworks, &run.declared_controls);
        let count = |status: Status| run.evidence.iter().filter(|e| e.status == status).count();
        let compliant = count(Status::Pass);
        let non_compliant = count(Status::Fail);
        let judged = compliant + non_compliant;
        let mut by_check: HashMap<&CheckId, Vec<&Evidence>> = HashMap::new();
        for e in &run.evidence {
            by_check.entry(&e.check_id).or_default().push(e);
        }
        Self {
            schema_version: SCHEMA_VERSION.to_owned(),
            run_id: run.id,
            generated_at: Utc::now(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            compliance_percentage: percentage(compliant, judged).unwrap_or(0.0),
            total_evidence: run.evidence.len(),
            compliant,
            non_compliant,
            waived: run.evidence.iter().filter(|e| e.status == Status::Fail && e.waiver.is_some()).count(),
            errors: count(Status::Error),
            not_applicable: count(Status::NotApplicable),
            check_results: check_results(&by_check),
            frameworks: frameworks.iter().map(|f| framework_result(f.as_ref(), &by_check)).collect(),
            targets: crate::targets::target_results(&run.targets, &run.evidence, &run.gaps, &frameworks),
            gaps: run.gaps,
            expired_waivers: run.expired_waivers,
            checks: run.checks,
            delta: None,
            declared_controls: run.declared_controls,
            evidence: run.evidence,
        }
    }

    /// Adds the changes since `previous`.
    pub fn with_delta_from(mut self, previous: &Report) -> Self {
        self.delta = Some(crate::Delta::between(previous, &self));
        self
    }

    /// The report's file name: `compliance_report_<YYYYMMDD_HHMMSS>.json`, UTC.
    pub fn json_file_name(&self) -> String {
        self.file_name(crate::Format::Json)
    }

    /// The file name of the report in `format`:
    /// `compliance_report_<YYYYMMDD_HHMMSS>.<extension>`, UTC.
    pub fn file_name(&self, format: crate::Format) -> String {
        format!("compliance_report_{}.{}", self.generated_at.format("%Y%m%d_%H%M%S"), format.extension())
    }

    /// Writes the JSON report into `dir` (created if missing) and returns its
    /// path: [`Report::write`] with [`Format::Json`](crate::Format::Json). A
    /// report is never overwritten: a second report of the same second gets
    /// `_2`, `_3`, ... before `.json`.
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        self.write(crate::Format::Json, dir)
    }

    /// Reads a JSON report back (for deltas and remediation).
    pub fn read_json(path: &Path) -> Result<Self, ReportError> {
        let text =
            std::fs::read(path).map_err(|source| ReportError::Write { path: path.display().to_string(), source })?;
        serde_json::from_slice(&text).map_err(|e| {
            let oscal =
                serde_json::from_slice::<serde_json::Value>(&text).is_ok_and(|v| v.get("assessment-results").is_some());
            let hint = if oscal {
                " (this is the OSCAL output; give the compliance_report_<timestamp>.json report)"
            } else {
                ""
            };
            ReportError::Format {
                path: path.display().to_string(),
                message: format!("not a compliance-rs JSON report: {e}{hint}"),
            }
        })
    }

    /// Unwaived failures at or above `severity`.
    pub fn failures_at_or_above(&self, severity: compliance_core::Severity) -> usize {
        self.evidence.iter().filter(|e| e.is_unwaived_failure() && e.severity >= severity).count()
    }

    /// The one-line summary the CLI ends with: overall percentage and each framework's score.
    pub fn summary_line(&self) -> String {
        let judged = self.compliant + self.non_compliant;
        let mut line = if judged == 0 {
            format!("Compliance: n/a (nothing was judged; {} errors, {} gaps)", self.errors, self.gaps.len())
        } else {
            format!(
                "Compliance: {:.1}% ({} of {judged} judged evidence compliant; {} errors, {} gaps)",
                self.compliance_percentage,
                self.compliant,
                self.errors,
                self.gaps.len()
            )
        };
        for f in &self.frameworks {
            match f.score_percentage {
                Some(score) => line.push_str(&format!("; {} {:.1}%", f.id, score)),
                None => line.push_str(&format!("; {} not assessed", f.id)),
            }
        }
        line
    }
}

/// Writes a new file named `name` in `dir` (created if missing) with what
/// `fill` writes, adding `_2`, `_3`, ... before the extension when the name
/// is taken: a report or record is never overwritten. The content goes to a
/// hidden temporary file first and gets its name only once complete and on
/// disk, so a full disk or a failed renderer never leaves a partial file
/// that looks like a report.
pub fn write_complete(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn std::io::Write) -> Result<(), ReportError>,
) -> Result<PathBuf, ReportError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let io_err = |path: &Path, source| ReportError::Write { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let temporary = dir.join(format!(".{name}.{}-{serial}.partial", std::process::id()));
    // Errors name the file being written, not its temporary name.
    let shown = dir.join(name);
    let file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(&temporary).map_err(|e| io_err(&shown, e))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = fill(&mut writer).and_then(|()| {
        let file = writer.into_inner().map_err(|e| io_err(&shown, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&shown, e))
    });
    let published = written.and_then(|()| publish(&temporary, dir, name));
    // Whatever happened, the temporary name goes (a hard link kept the content).
    let _ = std::fs::remove_file(&temporary);
    published
}

/// Gives the complete file at `temporary` its final name: the first of
/// `name`, `stem_2.ext`, ... that is free, taken atomically (a hard link
/// fails when the name exists).
fn publish(temporary: &Path, dir: &Path, name: &str) -> Result<PathBuf, ReportError> {
    let io_err = |path: &Path, source| ReportError::Write { path: path.display().to_string(), source };
    // Split at the first dot so that `x.junit.xml` becomes `x_2.junit.xml`.
    let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
    for n in 1..10_000 {
        let candidate = if n == 1 { name.to_owned() } else { format!("{stem}_{n}.{ext}") };
        let path = dir.join(candidate);
        match std::fs::hard_link(temporary, &path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Err(io_err(
        &dir.join(name),
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, "too many files of the same second"),
    ))
}

/// Writes `bytes` to a new file named `name` in `dir` (see [`write_complete`]).
pub fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    write_complete(dir, name, |out| {
        out.write_all(bytes).map_err(|source| ReportError::Write { path: dir.join(name).display().to_string(), source })
    })
}

fn percentage(part: usize, whole: usize) -> Option<f64> {
    // Counts stay far below 2^52, so the conversion is exact.
    (whole > 0).then(|| (part as f64) * 100.0 / (whole as f64))
}

fn check_results(by_check: &HashMap<&CheckId, Vec<&Evidence>>) -> Vec<CheckResult> {
    let mut results: Vec<CheckResult> = by_check
        .iter()
        .map(|(id, list)| {
            let n = |s: Status, waived: Option<bool>| {
                list.iter().filter(|e| e.status == s && waived.is_none_or(|w| e.waiver.is_some() == w)).count()
            };
            let (passed, failed) = (n(Status::Pass, None), n(Status::Fail, Some(false)));
            let waived = n(Status::Fail, Some(true));
            CheckResult {
                check_id: (*id).clone(),
                passed,
                failed,
                waived,
                errors: n(Status::Error, None),
                not_applicable: n(Status::NotApplicable, None),
                score_percentage: percentage(passed, passed + failed + waived),
            }
        })
        .collect();
    results.sort_by(|a, b| a.check_id.cmp(&b.check_id));
    results
}

pub(crate) fn framework_result(
    framework: &dyn Framework,
    by_check: &HashMap<&CheckId, Vec<&Evidence>>,
) -> FrameworkResult {
    let mut controls = Vec::with_capacity(framework.controls().len());
    let mut tally: BTreeMap<ControlStatus, usize> = BTreeMap::new();
    for control in framework.controls() {
        let (mut passed, mut failed, mut waived, mut errors) = (0, 0, 0, 0);
        for e in control.checks.iter().filter_map(|c| by_check.get(c)).flatten() {
            match (e.status, e.waiver.is_some()) {
                (Status::Pass, _) => passed += 1,
                (Status::Fail, false) => failed += 1,
                (Status::Fail, true) => waived += 1,
                (Status::Error, _) => errors += 1,
                (Status::NotApplicable, _) => {}
            }
        }
        let status = if failed > 0 {
            ControlStatus::Fail
        } else if waived > 0 {
            ControlStatus::Waived
        } else if passed > 0 {
            ControlStatus::Pass
        } else if errors > 0 {
            ControlStatus::Unknown
        } else {
            ControlStatus::NotAssessed
        };
        *tally.entry(status).or_default() += 1;
        controls.push(ControlResult {
            id: control.id.clone(),
            title: control.title.clone(),
            status,
            checks: control.checks.clone(),
            passed,
            failed,
            waived,
            errors,
        });
    }
    let assessed = controls.len() - tally.get(&ControlStatus::NotAssessed).copied().unwrap_or(0);
    FrameworkResult {
        id: framework.id().to_owned(),
        name: framework.name().to_owned(),
        version: framework.version().to_owned(),
        score_percentage: percentage(tally.get(&ControlStatus::Pass).copied().unwrap_or(0), assessed),
        controls,
    }
}
