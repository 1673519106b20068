//! Verifying a package with nothing but its folder and the public keys.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Component, Path};

use chrono::{DateTime, Utc};
use compliance_core::store::{RecordKind, canonical_json, seal};
use serde::Serialize;
use serde_json::Value;

use super::{CHAIN, ChainLine, ENVELOPE, PREDICATE_TYPE};
use crate::statement::{PAYLOAD_TYPE, STATEMENT_TYPE, file_sha256};
use crate::{AttestError, Envelope, Keyring, Problem, Statement};

/// An envelope or a report larger than this is refused, not read.
const MAX_JSON_FILE: u64 = 1 << 30;

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
    /// The chain's head as signed.
    pub head_seq: i64,
    /// Its hash.
    pub head_hash: String,
}

fn malformed(what: &str, message: impl Into<String>) -> Problem {
    Problem::Malformed { what: what.to_owned(), message: message.into() }
}

fn read_json(path: &Path, name: &str) -> Result<Result<Value, Problem>, AttestError> {
    let size = std::fs::metadata(path).map_err(|e| AttestError::io(path, e))?.len();
    if size > MAX_JSON_FILE {
        return Ok(Err(malformed(name, format!("{size} bytes: larger than {MAX_JSON_FILE}"))));
    }
    let text = std::fs::read(path).map_err(|e| AttestError::io(path, e))?;
    Ok(serde_json::from_slice(&text).map_err(|e| malformed(name, format!("not JSON: {e}"))))
}

/// A subject name that stays inside the package: relative, with no `..`.
fn inside(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn files_under(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> Result<(), AttestError> {
    for entry in std::fs::read_dir(dir).map_err(|e| AttestError::io(dir, e))? {
        let entry = entry.map_err(|e| AttestError::io(dir, e))?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type().map_err(|e| AttestError::io(entry.path(), e))?;
        if kind.is_dir() {
            files_under(&entry.path(), &format!("{name}/"), out)?;
        } else {
            out.insert(name);
        }
    }
    Ok(())
}

/// Verifies the package in `dir` against `keyring`, offline:
///
/// 1. the envelope's signature, by a key of the keyring valid at the
///    statement's `signed_at`;
/// 2. every subject's SHA-256, and that no file is missing or added;
/// 3. the chain segment, every record recomputed and linked, ending at the
///    signed head;
/// 4. every evidence of every report and control file, found in the chain.
///
/// The outer `Err` is a package that could not be read at all; the inner
/// one is the first problem found.
pub fn verify_package(dir: &Path, keyring: &Keyring) -> Result<Result<PackageReport, Problem>, AttestError> {
    match verify_inner(dir, keyring) {
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

fn verify_inner(dir: &Path, keyring: &Keyring) -> Result<PackageReport, Failure> {
    if !dir.is_dir() {
        return Err(AttestError::Invalid(format!("{}: not a folder", dir.display())).into());
    }
    // 1. The signature, then what was signed.
    let envelope_path = dir.join(ENVELOPE);
    if !envelope_path.is_file() {
        let hint =
            if dir.join(super::UNSIGNED_STATEMENT).is_file() { " (it was exported without --sign-key)" } else { "" };
        return Err(malformed(ENVELOPE, format!("missing: the package is not signed{hint}")).into());
    }
    let envelope: Envelope = serde_json::from_value(read_json(&envelope_path, ENVELOPE)??)
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
    keyring.check_valid(&verified.key, signed_at, ENVELOPE)?;

    // 2. Every file is signed, unchanged, and nothing was added.
    let mut signed = BTreeSet::new();
    for subject in &statement.subject {
        if !inside(&subject.name) || !signed.insert(subject.name.clone()) {
            return Err(
                malformed(ENVELOPE, format!("subject {:?}: outside the package or repeated", subject.name)).into()
            );
        }
        let expected = subject
            .sha256_hex()
            .ok_or_else(|| malformed(ENVELOPE, format!("subject {:?} has no sha256", subject.name)))?;
        let path = dir.join(&subject.name);
        if !path.is_file() {
            return Err(Problem::FileRemoved { path: subject.name.clone() }.into());
        }
        let actual = file_sha256(&path)?;
        if actual != expected {
            return Err(
                Problem::FileChanged { path: subject.name.clone(), expected: expected.to_owned(), actual }.into()
            );
        }
    }
    let mut present = BTreeSet::new();
    files_under(dir, "", &mut present)?;
    if let Some(added) = present.iter().find(|f| *f != ENVELOPE && !signed.contains(*f)) {
        return Err(Problem::FileAdded { path: added.clone() }.into());
    }

    // 3. The chain segment recomputes and ends at the signed head.
    let chain = &predicate["chain"];
    let (first_seq, head_seq) = (chain["first_seq"].as_i64(), chain["head_seq"].as_i64());
    let (Some(first_seq), Some(head_seq), Some(head_hash), Some(length)) =
        (first_seq, head_seq, chain["head_hash"].as_str(), chain["length"].as_u64())
    else {
        return Err(
            malformed(ENVELOPE, "predicate.chain: first_seq, head_seq, head_hash and length are required").into()
        );
    };
    if !signed.contains(CHAIN) {
        return Err(malformed(ENVELOPE, format!("{CHAIN} is not a subject")).into());
    }
    let chain_path = dir.join(CHAIN);
    let file = std::fs::File::open(&chain_path).map_err(|e| AttestError::io(&chain_path, e))?;
    // Run id -> canonical JSON of each evidence it holds; seq -> hash of evidence records.
    let mut in_chain: HashMap<String, HashSet<String>> = HashMap::new();
    let mut evidence_hashes: HashMap<i64, String> = HashMap::new();
    let mut previous: Option<(i64, String)> = None;
    let mut count = 0u64;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| AttestError::io(&chain_path, e))?;
        let record: ChainLine = serde_json::from_str(&line)
            .map_err(|e| malformed(CHAIN, format!("line {}: not a chain record: {e}", i + 1)))?;
        let changed = |detail: String| Problem::ChainChanged { seq: record.seq, detail };
        let kind = RecordKind::parse(&record.kind).ok_or_else(|| changed(format!("unknown kind {:?}", record.kind)))?;
        match &previous {
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
        if kind == RecordKind::Evidence {
            let body: Value = serde_json::from_str(&record.body).map_err(|e| changed(format!("body: {e}")))?;
            let run = body["run_id"].as_str().unwrap_or_default().to_owned();
            in_chain.entry(run).or_default().insert(canonical_json(&body["evidence"]));
            evidence_hashes.insert(record.seq, record.hash.clone());
        }
        previous = Some((record.seq, record.hash));
        count += 1;
    }
    match previous {
        Some((seq, hash)) if seq == head_seq && hash == head_hash && count == length => {}
        Some((seq, _)) => {
            return Err(Problem::ChainChanged {
                seq,
                detail: format!("the segment ends at record {seq} of {count}, the statement signs {head_seq} ({head_hash}) of {length}"),
            }
            .into());
        }
        None => return Err(malformed(CHAIN, "empty").into()),
    }

    // 4. Every evidence of the reports and control files is in the chain.
    let runs = predicate["runs"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut checked = 0usize;
    for run in runs {
        let id = run["id"].as_str().unwrap_or_default();
        let name = format!("reports/{id}.json");
        if !signed.contains(&name) {
            return Err(Problem::FileRemoved { path: name }.into());
        }
        let report = read_json(&dir.join(&name), &name)??;
        if report["run_id"].as_str() != Some(id) {
            return Err(malformed(&name, format!("run_id {}, expected {id}", report["run_id"])).into());
        }
        let held = in_chain.get(id);
        for evidence in report["evidence"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if !held.is_some_and(|set| set.contains(&canonical_json(evidence))) {
                return Err(not_in_chain(&name, evidence).into());
            }
            checked += 1;
        }
    }
    for name in signed.iter().filter(|n| n.starts_with("controls/") && n.ends_with(".json")) {
        let control = read_json(&dir.join(name), name)??;
        for entry in control["evidence"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let evidence = &entry["evidence"];
            let run = entry["run_id"].as_str().unwrap_or_default();
            let same_record =
                entry["seq"].as_i64().and_then(|s| evidence_hashes.get(&s)).is_some_and(|h| entry["hash"] == *h);
            if !same_record || !in_chain.get(run).is_some_and(|set| set.contains(&canonical_json(evidence))) {
                return Err(not_in_chain(name, evidence).into());
            }
            checked += 1;
        }
    }
    Ok(PackageReport {
        signed_by: verified.key.fingerprint().to_owned(),
        signed_at,
        framework: predicate["framework"].as_str().unwrap_or_default().to_owned(),
        runs: runs.len(),
        files: signed.len(),
        chain_records: usize::try_from(count).unwrap_or(usize::MAX),
        evidence: checked,
        head_seq,
        head_hash: head_hash.to_owned(),
    })
}

fn not_in_chain(file: &str, evidence: &Value) -> Problem {
    Problem::EvidenceNotInChain {
        file: file.to_owned(),
        check: evidence["check_id"].as_str().unwrap_or("?").to_owned(),
        resource: evidence["resource"]["id"].as_str().unwrap_or("?").to_owned(),
    }
}
