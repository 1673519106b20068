//! Verifying a package with nothing but its folder and the public keys.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use compliance_core::store::{RecordKind, canonical_json, seal};
use serde::Serialize;
use serde_json::Value;

use super::{CHAIN, ChainLine, ENVELOPE, PREDICATE_TYPE};
use crate::checkpoint::{Checkpoint, verify_record};
use crate::statement::{PAYLOAD_TYPE, STATEMENT_TYPE, file_sha256};
use crate::{AttestError, Envelope, Keyring, Problem, Statement};

/// A JSON file (envelope, manifest, report, control) larger than this is
/// refused unread.
const MAX_JSON_FILE: u64 = 1 << 30;

/// How much later than now a signature may say it was made (clock skew).
const SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// What to check beyond the package itself.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Checkpoint copies kept outside the database (`FILE:LINE`, checkpoint):
    /// those of records in the package's chain segment must match it.
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// Every run's records must be covered by a verified checkpoint (in the
    /// segment or among the copies): refuses packages from a chain whose
    /// checkpoints were stripped before export.
    pub require_checkpoints: bool,
}

impl VerifyOptions {
    /// With these checkpoint copies.
    pub fn with_checkpoints(mut self, checkpoints: Vec<(String, Checkpoint)>) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Requires every run to be covered by a checkpoint.
    pub fn requiring_checkpoints(mut self) -> Self {
        self.require_checkpoints = true;
        self
    }
}

/// What a package that verified holds.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PackageReport {
    /// The key that signed it.
    pub signed_by: String,
    /// When, as the signed statement says.
    pub signed_at: DateTime<Utc>,
    /// The framework.
    pub framework: String,
    /// Runs.
    pub runs: usize,
    /// Files checked against their digests.
    pub files: usize,
    /// Chain records recomputed.
    pub chain_records: usize,
    /// Evidence of the reports and control files found in the chain.
    pub evidence: usize,
    /// Checkpoints verified (in the segment, and copies from outside).
    pub checkpoints: usize,
    /// The last record a verified checkpoint covers (0: none).
    pub attested_through: i64,
    /// The chain's head as signed.
    pub head_seq: i64,
    /// Its hash.
    pub head_hash: String,
}

fn malformed(what: &str, message: impl Into<String>) -> Problem {
    Problem::Malformed { what: what.to_owned(), message: message.into() }
}

/// A regular file of the package (never a link, a device or a folder).
fn regular_file(dir: &Path, name: &str) -> Result<Result<std::fs::Metadata, Problem>, AttestError> {
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Err(Problem::FileRemoved { path: name.to_owned() })),
        Err(e) => Err(AttestError::io(&path, e)),
        Ok(meta) if meta.file_type().is_file() => Ok(Ok(meta)),
        Ok(_) => Ok(Err(malformed(name, "not a regular file (a link, a folder or a device): refused"))),
    }
}

fn read_json(dir: &Path, name: &str) -> Result<Result<Value, Problem>, AttestError> {
    if let Err(p) = regular_file(dir, name)? {
        return Ok(Err(p));
    }
    let path = dir.join(name);
    let file = std::fs::File::open(&path).map_err(|e| AttestError::io(&path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_FILE + 1).read_to_end(&mut bytes).map_err(|e| AttestError::io(&path, e))?;
    if bytes.len() as u64 > MAX_JSON_FILE {
        return Ok(Err(malformed(name, format!("larger than {MAX_JSON_FILE} bytes"))));
    }
    Ok(serde_json::from_slice(&bytes).map_err(|e| malformed(name, format!("not JSON: {e}"))))
}

/// A subject name that stays inside the package, in one spelling only:
/// `/`-separated, no empty, `.` or `..` part, no `\`.
fn well_formed(name: &str) -> bool {
    !name.is_empty() && !name.contains('\\') && name.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Every entry under `dir`, links and empty folders included (an empty
/// folder as `name/`), without following links.
fn entries_under(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> Result<(), AttestError> {
    let mut empty = true;
    for entry in std::fs::read_dir(dir).map_err(|e| AttestError::io(dir, e))? {
        let entry = entry.map_err(|e| AttestError::io(dir, e))?;
        empty = false;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type().map_err(|e| AttestError::io(entry.path(), e))?;
        if kind.is_dir() {
            entries_under(&entry.path(), &format!("{name}/"), out)?;
        } else {
            out.insert(name);
        }
    }
    if empty && !prefix.is_empty() {
        out.insert(prefix.to_owned());
    }
    Ok(())
}

/// Verifies the package in `dir` against `keyring`, offline (see
/// [`verify_package_with`] for checkpoint copies and requirements).
pub fn verify_package(dir: &Path, keyring: &Keyring) -> Result<Result<PackageReport, Problem>, AttestError> {
    verify_package_with(dir, keyring, &VerifyOptions::default())
}

/// Verifies the package in `dir` against `keyring`, offline:
///
/// 1. the envelope's signature, by a key of the keyring valid at the
///    statement's `signed_at` (which may not be in the future);
/// 2. every subject: a regular file (never a link) of the size the signed
///    manifest gives and the signed SHA-256; nothing missing, nothing added;
/// 3. the chain segment, every record recomputed and linked, ending at the
///    signed head; every checkpoint record in it signed by a key of the
///    keyring and matching the record before it; the copies in `options`
///    matching the records they name;
/// 4. every report's evidence found in the chain under its run, its counts
///    recomputed from that evidence; every control file's entry the very
///    evidence record it names.
///
/// The outer `Err` is a package that could not be read at all; the inner
/// one is the first problem found.
pub fn verify_package_with(
    dir: &Path,
    keyring: &Keyring,
    options: &VerifyOptions,
) -> Result<Result<PackageReport, Problem>, AttestError> {
    match verify_inner(dir, keyring, options) {
        Ok(report) => Ok(Ok(report)),
        Err(Failure::Problem(p)) => Ok(Err(p)),
        Err(Failure::Error(e)) => Err(e),
    }
}

enum Failure {
    Problem(Problem),
    Error(AttestError),
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Self {
        Failure::Problem(p)
    }
}

impl From<AttestError> for Failure {
    fn from(e: AttestError) -> Self {
        Failure::Error(e)
    }
}

/// The evidence records of the segment: by position, and per run.
#[derive(Default)]
struct ChainEvidence {
    by_seq: HashMap<i64, (String, String, Arc<str>)>,
    by_run: HashMap<String, HashSet<Arc<str>>>,
}

fn verify_inner(dir: &Path, keyring: &Keyring, options: &VerifyOptions) -> Result<PackageReport, Failure> {
    if !dir.is_dir() {
        return Err(AttestError::Invalid(format!("{}: not a folder", dir.display())).into());
    }
    // 1. The signature, then what was signed.
    if !dir.join(ENVELOPE).exists() && std::fs::symlink_metadata(dir.join(ENVELOPE)).is_err() {
        let hint =
            if dir.join(super::UNSIGNED_STATEMENT).is_file() { " (it was exported without --sign-key)" } else { "" };
        return Err(malformed(ENVELOPE, format!("missing: the package is not signed{hint}")).into());
    }
    let envelope: Envelope = serde_json::from_value(read_json(dir, ENVELOPE)??)
        .map_err(|e| malformed(ENVELOPE, format!("not a DSSE envelope: {e}")))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(malformed(
            ENVELOPE,
            format!("payload type {:?}, expected {PAYLOAD_TYPE:?}", envelope.payload_type),
        )
        .into());
    }
    let verified = envelope.verify(keyring, ENVELOPE)?;
    let statement: Statement = serde_json::from_slice(&verified.payload)
        .map_err(|e| malformed(ENVELOPE, format!("the payload is not an in-toto statement: {e}")))?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(malformed(
            ENVELOPE,
            format!(
                "statement {} with predicate {}: not an evidence package",
                statement.statement_type, statement.predicate_type
            ),
        )
        .into());
    }
    let predicate = &statement.predicate;
    let signed_at: DateTime<Utc> = serde_json::from_value(predicate["signed_at"].clone())
        .map_err(|e| malformed(ENVELOPE, format!("predicate.signed_at: {e}")))?;
    if signed_at > Utc::now() + SKEW {
        return Err(malformed(ENVELOPE, format!("predicate.signed_at {signed_at} is in the future")).into());
    }
    keyring.check_valid(&verified.key, signed_at, ENVELOPE)?;

    // 2. Every file is signed, a regular file of the signed size, unchanged; nothing was added.
    let mut signed: HashMap<&str, &str> = HashMap::new();
    for subject in &statement.subject {
        let digest = subject
            .sha256_hex()
            .ok_or_else(|| malformed(ENVELOPE, format!("subject {:?} has no sha256", subject.name)))?;
        if !well_formed(&subject.name) || subject.name == ENVELOPE || signed.insert(&subject.name, digest).is_some() {
            return Err(malformed(
                ENVELOPE,
                format!("subject {:?}: outside the package, misspelt or repeated", subject.name),
            )
            .into());
        }
    }
    let sizes = signed_sizes(dir, &signed)?;
    let mut names: Vec<&str> = signed.keys().copied().collect();
    names.sort_unstable();
    for name in &names {
        let meta = regular_file(dir, name)??;
        if let Some(size) = sizes.get(*name)
            && meta.len() != *size
        {
            let changed = Problem::FileChanged {
                path: (*name).to_owned(),
                expected: format!("{size} bytes"),
                actual: format!("{} bytes", meta.len()),
            };
            return Err(changed.into());
        }
        let actual = file_sha256(&dir.join(name))?;
        let expected = signed[name];
        if actual != expected {
            let changed = Problem::FileChanged {
                path: (*name).to_owned(),
                expected: format!("SHA-256 {expected}"),
                actual: format!("SHA-256 {actual}"),
            };
            return Err(changed.into());
        }
    }
    let mut present = BTreeSet::new();
    entries_under(dir, "", &mut present)?;
    if let Some(added) = present.iter().find(|f| *f != ENVELOPE && !signed.contains_key(f.as_str())) {
        return Err(Problem::FileAdded { path: added.clone() }.into());
    }

    // 3. The chain segment recomputes, ends at the signed head, and matches its checkpoints.
    let chain = &predicate["chain"];
    let (Some(first_seq), Some(head_seq), Some(head_hash), Some(length)) = (
        chain["first_seq"].as_i64(),
        chain["head_seq"].as_i64(),
        chain["head_hash"].as_str(),
        chain["length"].as_u64(),
    ) else {
        return Err(
            malformed(ENVELOPE, "predicate.chain: first_seq, head_seq, head_hash and length are required").into()
        );
    };
    if !signed.contains_key(CHAIN) {
        return Err(malformed(ENVELOPE, format!("{CHAIN} is not a subject")).into());
    }
    let segment = walk_chain(dir, keyring, options, first_seq)?;
    match &segment.last {
        Some((seq, hash)) if *seq == head_seq && hash == head_hash && segment.count == length => {}
        Some((seq, _)) => {
            let detail = format!(
                "the segment ends at record {seq} of {}, the statement signs {head_seq} ({head_hash}) of {length}",
                segment.count
            );
            return Err(Problem::ChainChanged { seq: *seq, detail }.into());
        }
        None => return Err(malformed(CHAIN, "empty").into()),
    }

    // 4. The reports and control files say only what the chain holds.
    let Some(runs) = predicate["runs"].as_array().filter(|r| !r.is_empty()) else {
        return Err(malformed(ENVELOPE, "predicate.runs: a list of at least one run is required").into());
    };
    let mut run_ids = HashSet::new();
    let mut checked = 0usize;
    for run in runs {
        let Some(id) = run["id"].as_str() else {
            return Err(malformed(ENVELOPE, "predicate.runs: every run needs an id").into());
        };
        run_ids.insert(id);
        let name = format!("reports/{id}.json");
        if !signed.contains_key(name.as_str()) {
            return Err(Problem::FileRemoved { path: name }.into());
        }
        checked += check_report(dir, &name, id, &segment.evidence)?;
        if options.require_checkpoints {
            let last_seq = segment.run_ends.get(id).copied().unwrap_or(i64::MAX);
            if last_seq > segment.attested_through {
                let unattested =
                    Problem::NotAttested { run: id.to_owned(), last_seq, attested_through: segment.attested_through };
                return Err(unattested.into());
            }
        }
    }
    for name in &names {
        if let Some(id) =
            name.strip_prefix("reports/").and_then(|n| n.strip_suffix(".json")).filter(|n| !n.ends_with(".oscal"))
            && !run_ids.contains(id)
        {
            return Err(malformed(name, "a report of a run the statement does not list").into());
        }
        if name.starts_with("controls/") && name.ends_with(".json") {
            checked += check_control(dir, name, &segment.evidence)?;
        }
    }
    Ok(PackageReport {
        signed_by: verified.key.fingerprint().to_owned(),
        signed_at,
        framework: predicate["framework"].as_str().unwrap_or_default().to_owned(),
        runs: runs.len(),
        files: signed.len(),
        chain_records: usize::try_from(segment.count).unwrap_or(usize::MAX),
        evidence: checked,
        checkpoints: segment.checkpoints,
        attested_through: segment.attested_through,
        head_seq,
        head_hash: head_hash.to_owned(),
    })
}

/// The sizes `manifest.json` signs, once its own digest is checked.
fn signed_sizes(dir: &Path, signed: &HashMap<&str, &str>) -> Result<HashMap<String, u64>, Failure> {
    const MANIFEST: &str = "manifest.json";
    let Some(expected) = signed.get(MANIFEST) else {
        return Err(malformed(ENVELOPE, "manifest.json is not a subject").into());
    };
    let meta = regular_file(dir, MANIFEST)??;
    if meta.len() > 256 << 20 {
        return Err(malformed(MANIFEST, "larger than 256 MiB").into());
    }
    let actual = file_sha256(&dir.join(MANIFEST))?;
    if actual != *expected {
        let changed = Problem::FileChanged {
            path: MANIFEST.into(),
            expected: format!("SHA-256 {expected}"),
            actual: format!("SHA-256 {actual}"),
        };
        return Err(changed.into());
    }
    let manifest = read_json(dir, MANIFEST)??;
    Ok(manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["path"].as_str()?.to_owned(), f["bytes"].as_u64()?)))
        .collect())
}

/// What walking the segment found.
struct Segment {
    last: Option<(i64, String)>,
    count: u64,
    evidence: ChainEvidence,
    /// Run id -> its last record.
    run_ends: HashMap<String, i64>,
    checkpoints: usize,
    attested_through: i64,
}

fn walk_chain(dir: &Path, keyring: &Keyring, options: &VerifyOptions, first_seq: i64) -> Result<Segment, Failure> {
    let chain_path = dir.join(CHAIN);
    let file = std::fs::File::open(&chain_path).map_err(|e| AttestError::io(&chain_path, e))?;
    let mut copies: HashMap<i64, Vec<&(String, Checkpoint)>> = HashMap::new();
    for copy in &options.checkpoints {
        copy.1.verify(keyring, &copy.0)?;
        copies.entry(copy.1.seq).or_default().push(copy);
    }
    let mut segment = Segment {
        last: None,
        count: 0,
        evidence: ChainEvidence::default(),
        run_ends: HashMap::new(),
        checkpoints: 0,
        attested_through: 0,
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| AttestError::io(&chain_path, e))?;
        let record: ChainLine = serde_json::from_str(&line)
            .map_err(|e| malformed(CHAIN, format!("line {}: not a chain record: {e}", i + 1)))?;
        let changed = |detail: String| Problem::ChainChanged { seq: record.seq, detail };
        let kind = RecordKind::parse(&record.kind).ok_or_else(|| changed(format!("unknown kind {:?}", record.kind)))?;
        match &segment.last {
            None if record.seq != first_seq => {
                return Err(
                    changed(format!("the segment starts at {}, the statement says {first_seq}", record.seq)).into()
                );
            }
            Some((seq, _)) if record.seq != seq + 1 => {
                return Err(changed(format!("follows record {seq}: records were removed or moved")).into());
            }
            Some((_, hash)) if &record.prev_hash != hash => {
                return Err(changed("does not link to the record before it".into()).into());
            }
            _ => {}
        }
        if seal(&record.prev_hash, record.seq, kind, &record.body) != record.hash {
            return Err(changed("its content does not match its hash".into()).into());
        }
        for (source, copy) in copies.remove(&record.seq).unwrap_or_default() {
            if copy.hash != record.hash {
                let detail = format!(
                    "signed hash {}, the package's chain has {}: the chain was rewritten",
                    copy.hash, record.hash
                );
                return Err(Problem::CheckpointMismatch { seq: record.seq, source_of: source.clone(), detail }.into());
            }
            segment.checkpoints += 1;
            segment.attested_through = segment.attested_through.max(record.seq);
        }
        match kind {
            RecordKind::Evidence => {
                let body: Value = serde_json::from_str(&record.body).map_err(|e| changed(format!("body: {e}")))?;
                let run = body["run_id"].as_str().unwrap_or_default().to_owned();
                let evidence: Arc<str> = Arc::from(canonical_json(&body["evidence"]));
                segment.evidence.by_run.entry(run.clone()).or_default().insert(Arc::clone(&evidence));
                segment.evidence.by_seq.insert(record.seq, (record.hash.clone(), run, evidence));
            }
            RecordKind::Run => {
                let body: Value = serde_json::from_str(&record.body).map_err(|e| changed(format!("body: {e}")))?;
                if let (Some(id), Some(records)) = (body["id"].as_str(), body["records"].as_i64()) {
                    segment.run_ends.insert(id.to_owned(), record.seq + records - 1);
                }
            }
            RecordKind::Checkpoint => {
                let source = format!("{CHAIN} record {}", record.seq);
                verify_record(record.seq, &record.body, &record.prev_hash, keyring, &source)?;
                segment.checkpoints += 1;
                segment.attested_through = record.seq;
            }
            _ => {}
        }
        segment.last = Some((record.seq, record.hash));
        segment.count += 1;
    }
    Ok(segment)
}

/// A report: its run, every evidence in the chain under that run, and its
/// counts recomputed from that evidence. Returns the evidence checked.
fn check_report(dir: &Path, name: &str, run: &str, chain: &ChainEvidence) -> Result<usize, Failure> {
    let report = read_json(dir, name)??;
    if report["run_id"].as_str() != Some(run) {
        return Err(malformed(name, format!("run_id {}, expected {run}", report["run_id"])).into());
    }
    let Some(evidence) = report["evidence"].as_array() else {
        return Err(malformed(name, "evidence: a list is required").into());
    };
    let held = chain.by_run.get(run);
    for e in evidence {
        if !held.is_some_and(|set| set.contains(canonical_json(e).as_str())) {
            return Err(not_in_chain(name, e).into());
        }
    }
    let count = |status: &str| evidence.iter().filter(|e| e["status"] == status).count();
    let (pass, fail) = (count("pass"), count("fail"));
    let expected = [
        ("total_evidence", evidence.len()),
        ("compliant", pass),
        ("non_compliant", fail),
        ("errors", count("error")),
        ("not_applicable", count("not_applicable")),
    ];
    for (field, value) in expected {
        if report[field].as_u64() != Some(value as u64) {
            return Err(malformed(name, format!("{field} is {}, its evidence gives {value}", report[field])).into());
        }
    }
    let percentage = if pass + fail == 0 { 0.0 } else { pass as f64 * 100.0 / (pass + fail) as f64 };
    if report["compliance_percentage"].as_f64().is_none_or(|p| (p - percentage).abs() > 0.01) {
        let stated = &report["compliance_percentage"];
        return Err(
            malformed(name, format!("compliance_percentage is {stated}, its evidence gives {percentage:.2}")).into()
        );
    }
    Ok(evidence.len())
}

/// A control file: each entry is exactly the evidence record it names.
fn check_control(dir: &Path, name: &str, chain: &ChainEvidence) -> Result<usize, Failure> {
    let control = read_json(dir, name)??;
    let Some(entries) = control["evidence"].as_array() else {
        return Err(malformed(name, "evidence: a list is required").into());
    };
    for entry in entries {
        let evidence = &entry["evidence"];
        let same = entry["seq"].as_i64().and_then(|seq| chain.by_seq.get(&seq)).is_some_and(|(hash, run, held)| {
            entry["hash"] == hash.as_str() && entry["run_id"] == run.as_str() && **held == canonical_json(evidence)
        });
        if !same {
            return Err(not_in_chain(name, evidence).into());
        }
    }
    Ok(entries.len())
}

fn not_in_chain(file: &str, evidence: &Value) -> Problem {
    Problem::EvidenceNotInChain {
        file: file.to_owned(),
        check: evidence["check_id"].as_str().unwrap_or("?").to_owned(),
        resource: evidence["resource"]["id"].as_str().unwrap_or("?").to_owned(),
    }
}
