//! Writing a package from a store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use compliance_core::store::{Record, RecordKind, canonical_json};
use compliance_core::{Check, Evidence, EvidenceStore, Framework, Gap, Run};
use compliance_report::{Format, Report};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::info;

use super::{CHAIN, ChainLine, ENVELOPE, PREDICATE_TYPE, UNSIGNED_STATEMENT};
use crate::statement::{PAYLOAD_TYPE, file_sha256, sha256_hex};
use crate::{AttestError, Envelope, SigningKey, Statement, Subject, TOOL};

/// What to export.
#[derive(Clone)]
#[non_exhaustive]
pub struct ExportRequest {
    /// The framework (`soc2`).
    pub framework: String,
    /// Its controls to include; empty for all.
    pub controls: Vec<String>,
    /// Runs that started at or after this time…
    pub from: DateTime<Utc>,
    /// …and before this one.
    pub to: DateTime<Utc>,
    /// The frameworks reports are scored against (the one named included).
    pub frameworks: Vec<Arc<dyn Framework>>,
    /// The check catalogue: check metadata for the reports, and its digest
    /// in the statement.
    pub checks: Vec<Check>,
}

impl ExportRequest {
    /// Exports `framework` for runs started in `[from, to)`.
    pub fn new(
        framework: impl Into<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        frameworks: Vec<Arc<dyn Framework>>,
        checks: Vec<Check>,
    ) -> Self {
        Self { framework: framework.into(), controls: Vec::new(), from, to, frameworks, checks }
    }

    /// Only these controls.
    pub fn with_controls<I: IntoIterator<Item = S>, S: Into<String>>(mut self, controls: I) -> Self {
        self.controls = controls.into_iter().map(Into::into).collect();
        self
    }
}

/// What was written.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ExportSummary {
    /// The package folder.
    pub dir: PathBuf,
    /// Runs included.
    pub runs: usize,
    /// Evidence in their reports.
    pub evidence: usize,
    /// Controls with a file.
    pub controls: usize,
    /// Files signed (or listed, unsigned).
    pub files: usize,
    /// The chain segment: first and last record.
    pub chain: (i64, i64),
    /// The key that signed it, if one did.
    pub signed_by: Option<String>,
}

/// One run's records, gathered while the chain is copied.
#[derive(Default)]
struct RunRecords {
    evidence: Vec<(i64, String, Value)>,
    gaps: Vec<Gap>,
    waivers: Vec<Value>,
    /// Framework id -> control id -> checks, as mapped when the run was stored.
    mapping: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

fn invalid(message: impl Into<String>) -> AttestError {
    AttestError::Invalid(message.into())
}

/// A control id as a file name: characters other than letters, digits,
/// `.`, `-` and `_` become `_`.
pub(super) fn control_file_name(control: &str) -> String {
    control.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

struct Writer {
    dir: PathBuf,
    files: BTreeSet<String>,
}

impl Writer {
    fn write(&mut self, relative: &str, bytes: &[u8]) -> Result<(), AttestError> {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| AttestError::io(parent, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| AttestError::io(&path, e))?;
        file.write_all(bytes).map_err(|e| AttestError::io(&path, e))?;
        self.files.insert(relative.to_owned());
        Ok(())
    }

    fn json(&mut self, relative: &str, value: &impl Serialize) -> Result<(), AttestError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| invalid(format!("{relative}: {e}")))?;
        self.write(relative, &bytes)
    }
}

/// Writes the package of `request` into `out` (a new or empty folder),
/// signed with `key` when one is given (otherwise the statement is written
/// unsigned, as `statement.json`, and the package does not verify).
pub async fn export(
    store: &dyn EvidenceStore,
    request: &ExportRequest,
    out: &Path,
    key: Option<&SigningKey>,
) -> Result<ExportSummary, AttestError> {
    if request.from >= request.to {
        return Err(invalid(format!("the period is empty: {} is not before {}", request.from, request.to)));
    }
    let framework = request
        .frameworks
        .iter()
        .find(|f| f.id() == request.framework)
        .ok_or_else(|| invalid(format!("unknown framework {:?}", request.framework)))?
        .clone();
    for control in &request.controls {
        if !framework.controls().iter().any(|c| &c.id == control) {
            return Err(invalid(format!("{} has no control {control:?}", framework.id())));
        }
    }
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(invalid(format!("{}: not empty; a package is written into a new folder", out.display())));
    }
    // A chain that does not verify is never signed: the signature would vouch for it.
    let chain = store.verify().await?;
    if let Some(problem) = chain.problem {
        return Err(invalid(format!("the evidence chain does not verify ({problem}): nothing exported")));
    }
    let runs = store.runs(Some(request.from), Some(request.to)).await?;
    let Some(first) = runs.first() else {
        return Err(invalid(format!("no run started between {} and {}", request.from, request.to)));
    };
    std::fs::create_dir_all(out).map_err(|e| AttestError::io(out, e))?;
    let mut writer = Writer { dir: out.to_path_buf(), files: BTreeSet::new() };

    // The chain from the first run's header to the head, copied page by page;
    // the period's records are gathered on the way.
    let wanted: HashMap<&str, usize> = runs.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let mut per_run: Vec<RunRecords> = runs.iter().map(|_| RunRecords::default()).collect();
    let mut remediation = Vec::new();
    let (from_us, to_us) = (request.from.timestamp_micros(), request.to.timestamp_micros());
    let chain_path = out.join(CHAIN);
    let mut chain = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&chain_path)
            .map_err(|e| AttestError::io(&chain_path, e))?,
    );
    let (mut after, mut head, mut length) = (first.seq - 1, (0i64, String::new()), 0usize);
    loop {
        let page: Vec<Record> = store.records_after(after, 5_000).await?;
        let Some(last) = page.last().map(|r| r.seq) else { break };
        for record in page {
            let line = ChainLine {
                seq: record.seq,
                kind: record.kind.as_str().to_owned(),
                body: record.body.clone(),
                prev_hash: record.prev_hash.clone(),
                hash: record.hash.clone(),
            };
            let text = serde_json::to_string(&line).map_err(|e| invalid(e.to_string()))?;
            chain
                .write_all(text.as_bytes())
                .and_then(|()| chain.write_all(b"\n"))
                .map_err(|e| AttestError::io(&chain_path, e))?;
            length += 1;
            head = (record.seq, record.hash.clone());
            let run = record.index.run_id.as_deref().and_then(|id| wanted.get(id)).map(|i| &mut per_run[*i]);
            let body = || {
                serde_json::from_str::<Value>(&record.body)
                    .map_err(|e| invalid(format!("chain record {}: {e}", record.seq)))
            };
            match (record.kind, run) {
                (RecordKind::Evidence, Some(run)) => {
                    let mut body = body()?;
                    run.evidence.push((record.seq, record.hash.clone(), body["evidence"].take()));
                }
                (RecordKind::Gap, Some(run)) => {
                    let mut body = body()?;
                    if let Ok(gap) = serde_json::from_value(body["gap"].take()) {
                        run.gaps.push(gap);
                    }
                }
                (RecordKind::Waiver, Some(run)) => {
                    let body = body()?;
                    run.waivers.push(json!({ "seq": record.seq, "hash": record.hash, "run_id": body["run_id"], "waiver": body["waiver"] }));
                }
                (RecordKind::Controls, Some(run)) => {
                    let body = body()?;
                    run.mapping = serde_json::from_value(body["frameworks"].clone()).unwrap_or_default();
                }
                (RecordKind::Plan | RecordKind::Decision | RecordKind::Outcome, _)
                    if record.index.at_us.is_some_and(|at| (from_us..to_us).contains(&at)) =>
                {
                    remediation.push(json!({ "seq": record.seq, "kind": record.kind.as_str(), "hash": record.hash, "record": body()? }));
                }
                _ => {}
            }
        }
        after = last;
    }
    chain.flush().map_err(|e| AttestError::io(&chain_path, e))?;
    drop(chain);
    writer.files.insert(CHAIN.to_owned());

    // Reports, one per run, rendered from the chain's evidence.
    let catalogue: HashMap<&str, &Check> = request.checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut evidence_count = 0;
    let mut targets: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut judged: BTreeSet<String> = BTreeSet::new();
    for (stored, records) in runs.iter().zip(&per_run) {
        let evidence: Vec<Evidence> = records
            .evidence
            .iter()
            .map(|(seq, _, e)| {
                serde_json::from_value(e.clone()).map_err(|err| invalid(format!("chain record {seq}: {err}")))
            })
            .collect::<Result<_, _>>()?;
        for e in &evidence {
            targets.entry("providers").or_default().insert(e.resource.provider.clone());
            for (name, value) in
                [("clusters", &e.resource.cluster), ("accounts", &e.resource.account), ("regions", &e.resource.region)]
            {
                if let Some(v) = value {
                    targets.entry(name).or_default().insert(v.clone());
                }
            }
        }
        let ids: BTreeSet<&str> = evidence.iter().map(|e| e.check_id.as_str()).collect();
        judged.extend(ids.iter().map(|id| (*id).to_owned()));
        let checks: Vec<Check> = ids.iter().filter_map(|id| catalogue.get(id).map(|c| (*c).clone())).collect();
        evidence_count += evidence.len();
        let mut run = Run::from_evidence(checks, evidence);
        run.id = stored.id.parse().map_err(|e| invalid(format!("run {}: {e}", stored.id)))?;
        run.started_at = stored.started_at;
        run.finished_at = stored.finished_at;
        run.gaps = records.gaps.clone();
        run.declared_controls.clone_from(&stored.declared_controls);
        run.targets.clone_from(&stored.targets);
        let report = Report::from_owned_run(run, &request.frameworks);
        for (format, extension) in [(Format::Json, "json"), (Format::Html, "html"), (Format::Oscal, "oscal.json")] {
            writer.write(&format!("reports/{}.{extension}", stored.id), &report.render(format)?)?;
        }
    }

    // Per control: its checks (as mapped when each run was stored) and the evidence records behind it.
    let controls: Vec<&compliance_core::Control> = framework
        .controls()
        .iter()
        .filter(|c| request.controls.is_empty() || request.controls.contains(&c.id))
        .collect();
    let mut names = BTreeSet::new();
    for control in &controls {
        let name = control_file_name(&control.id);
        if !names.insert(name.clone()) {
            return Err(invalid(format!("controls {name:?}: two control ids give the same file name")));
        }
        let mut checks = BTreeSet::new();
        let mut supporting = Vec::new();
        for (stored, records) in runs.iter().zip(&per_run) {
            let mapped: BTreeSet<&String> =
                records.mapping.get(framework.id()).and_then(|m| m.get(&control.id)).into_iter().flatten().collect();
            checks.extend(mapped.iter().map(|c| c.to_string()));
            for (seq, hash, evidence) in &records.evidence {
                if evidence["check_id"].as_str().is_some_and(|id| mapped.iter().any(|c| c.as_str() == id)) {
                    supporting.push(json!({ "run_id": stored.id, "seq": seq, "hash": hash, "evidence": evidence }));
                }
            }
        }
        writer.json(
            &format!("controls/{}/{name}.json", framework.id()),
            &json!({ "framework": framework.id(), "control": control.id, "title": control.title,
                     "checks": checks, "evidence": supporting }),
        )?;
    }
    let waivers: Vec<&Value> = per_run.iter().flat_map(|r| &r.waivers).collect();
    writer.json("waivers.json", &waivers)?;
    writer.json("remediation.json", &remediation)?;

    let mut subjects = Vec::new();
    let mut manifest = Vec::new();
    for name in &writer.files {
        let path = out.join(name);
        let digest = file_sha256(&path)?;
        let bytes = std::fs::metadata(&path).map_err(|e| AttestError::io(&path, e))?.len();
        manifest.push(json!({ "path": name, "sha256": digest, "bytes": bytes }));
        subjects.push(Subject::sha256(name.clone(), digest));
    }
    writer.json("manifest.json", &json!({ "files": manifest }))?;
    subjects.push(Subject::sha256("manifest.json", file_sha256(&out.join("manifest.json"))?));

    let frameworks_digest = sha256_hex(
        canonical_json(&json!(
            request
                .frameworks
                .iter()
                .map(|f| json!({ "id": f.id(), "version": f.version(), "controls": f.controls() }))
                .collect::<Vec<_>>()
        ))
        .as_bytes(),
    );
    let predicate = json!({
        "tool": TOOL,
        "signed_at": Utc::now(),
        "framework": framework.id(),
        "controls": controls.iter().map(|c| &c.id).collect::<Vec<_>>(),
        "period": { "from": request.from, "to": request.to },
        "runs": runs.iter().map(|r| json!({ "id": r.id, "source": r.source, "started_at": r.started_at,
            "finished_at": r.finished_at, "seq": r.seq, "hash": r.hash })).collect::<Vec<_>>(),
        "targets": targets,
        "checks_judged": judged,
        "catalogue": { "checks": request.checks.len(), "sha256": sha256_hex(canonical_json(&json!(request.checks)).as_bytes()) },
        "frameworks": { "ids": request.frameworks.iter().map(|f| f.id()).collect::<Vec<_>>(), "sha256": frameworks_digest },
        "chain": { "first_seq": first.seq, "head_seq": head.0, "head_hash": head.1, "length": length },
    });
    let statement = Statement::new(subjects, PREDICATE_TYPE, predicate);
    let payload = serde_json::to_vec(&statement).map_err(|e| invalid(e.to_string()))?;
    let files = statement.subject.len();
    match key {
        Some(key) => writer.json(ENVELOPE, &Envelope::sign(PAYLOAD_TYPE, &payload, key))?,
        None => writer.write(UNSIGNED_STATEMENT, &payload)?,
    }
    info!(dir = %out.display(), runs = runs.len(), evidence = evidence_count, files, "evidence package written");
    Ok(ExportSummary {
        dir: out.to_path_buf(),
        runs: runs.len(),
        evidence: evidence_count,
        controls: controls.len(),
        files,
        chain: (first.seq, head.0),
        signed_by: key.map(|k| k.fingerprint().to_owned()),
    })
}
