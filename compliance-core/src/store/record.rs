//! Records: their kinds, canonical JSON, sealing, the indexed fields, and
//! the records each write appends (runs, plans, decisions, outcomes, prunes).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ChainHead, StoreError};
use crate::engine::Run;
use crate::evidence::Evidence;
use crate::framework::Framework;
use crate::remediation::{RemediationOutcome, RemediationPlan};
use crate::waiver::Waiver;

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordKind {
    /// A run's header: id, source, times, how many records the run has.
    Run,
    /// One evidence of a run.
    Evidence,
    /// One gap of a run.
    Gap,
    /// A waiver in force during a run.
    Waiver,
    /// The framework controls and their checks, as mapped for a run.
    Controls,
    /// A remediation plan.
    Plan,
    /// An approval or rejection of a plan: who and when.
    Decision,
    /// What applying a plan did, and its verification.
    Outcome,
    /// Records removed by retention, and the hash of the last of them.
    Prune,
    /// A signed statement of the chain's head (sequence, hash, time, key),
    /// so that a chain rewritten without the key no longer matches it.
    Checkpoint,
}

impl RecordKind {
    /// The name stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Run => "run",
            RecordKind::Evidence => "evidence",
            RecordKind::Gap => "gap",
            RecordKind::Waiver => "waiver",
            RecordKind::Controls => "controls",
            RecordKind::Plan => "plan",
            RecordKind::Decision => "decision",
            RecordKind::Outcome => "outcome",
            RecordKind::Prune => "prune",
            RecordKind::Checkpoint => "checkpoint",
        }
    }

    /// From the stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            RecordKind::Run,
            RecordKind::Evidence,
            RecordKind::Gap,
            RecordKind::Waiver,
            RecordKind::Controls,
            RecordKind::Plan,
            RecordKind::Decision,
            RecordKind::Outcome,
            RecordKind::Prune,
            RecordKind::Checkpoint,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// A record before it is sealed into the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRecord {
    /// What it records.
    pub kind: RecordKind,
    /// Its body, canonical JSON.
    pub body: String,
    /// Indexed fields, derived from the body.
    pub index: RecordIndex,
}

/// The fields of a record that queries filter on, derived from its body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordIndex {
    /// The run it belongs to.
    pub run_id: Option<String>,
    /// Evidence: the check. Plans: the check they fix.
    pub check_id: Option<String>,
    /// Evidence: the resource id. Plans, decisions, outcomes: the plan id.
    pub subject: Option<String>,
    /// Evidence: its status. Decisions: `approved` or `rejected`. Outcomes: `applied` or `failed`.
    pub status: Option<String>,
    /// When it was observed or decided, in microseconds since the Unix epoch.
    pub at_us: Option<i64>,
}

/// A sealed record, as a backend stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the chain, from 1, without holes (except pruned ranges).
    pub seq: i64,
    /// What it records.
    pub kind: RecordKind,
    /// Canonical JSON.
    pub body: String,
    /// Indexed fields.
    pub index: RecordIndex,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// `SHA-256(prev_hash, seq, kind, body)`, hex.
    pub hash: String,
}

/// The hash of one record.
pub fn seal(prev_hash: &str, seq: i64, kind: RecordKind, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(seq.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(kind.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(body.as_bytes());
    hex::encode(hasher.finalize())
}

/// Seals records after `head`; returns them and the new head.
pub fn seal_all(head: &ChainHead, records: Vec<NewRecord>) -> (Vec<Record>, ChainHead) {
    let mut prev = head.hash.clone();
    let mut seq = head.seq;
    let sealed = records
        .into_iter()
        .map(|r| {
            seq += 1;
            let hash = seal(&prev, seq, r.kind, &r.body);
            let record =
                Record { seq, kind: r.kind, body: r.body, index: r.index, prev_hash: prev.clone(), hash: hash.clone() };
            prev = hash;
            record
        })
        .collect();
    (sealed, ChainHead { seq, hash: prev })
}

/// JSON with object keys sorted at every level and no whitespace: the same
/// bytes for the same value, whatever the order it was built in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(512);
    write_canonical(value, &mut out);
    // serde_json writes only UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes `value` with its keys sorted, without copying it: keys are
/// sorted by reference at each level, and serde_json writes every key and
/// leaf, so the bytes are what serialising a sorted copy gives.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        leaf => {
            let _ = serde_json::to_writer(&mut *out, leaf);
        }
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn new_record(kind: RecordKind, body: &Value, index: RecordIndex) -> NewRecord {
    NewRecord { kind, body: canonical_json(body), index }
}

/// The index a body implies: what [`verify_chain`](super::verify_chain) compares a stored
/// record's index columns with.
pub fn index_of(kind: RecordKind, body: &Value) -> RecordIndex {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let at = |v: &Value| v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| micros(t.to_utc()));
    match kind {
        RecordKind::Run => {
            RecordIndex { run_id: text(&body["id"]), at_us: at(&body["started_at"]), ..RecordIndex::default() }
        }
        RecordKind::Evidence => RecordIndex {
            run_id: text(&body["run_id"]),
            check_id: text(&body["evidence"]["check_id"]),
            subject: text(&body["evidence"]["resource"]["id"]),
            status: text(&body["evidence"]["status"]),
            at_us: at(&body["evidence"]["observed_at"]),
        },
        RecordKind::Gap | RecordKind::Waiver | RecordKind::Controls => {
            RecordIndex { run_id: text(&body["run_id"]), ..RecordIndex::default() }
        }
        RecordKind::Plan => RecordIndex {
            run_id: text(&body["run_id"]),
            check_id: text(&body["plan"]["check_id"]),
            subject: text(&body["plan"]["id"]),
            status: Some("pending".into()),
            at_us: at(&body["plan"]["created_at"]),
        },
        RecordKind::Decision => RecordIndex {
            subject: text(&body["plan_id"]),
            status: text(&body["decision"]),
            at_us: at(&body["at"]),
            ..RecordIndex::default()
        },
        RecordKind::Outcome => RecordIndex {
            subject: text(&body["outcome"]["plan_id"]),
            status: Some(if body["outcome"]["applied"] == true { "applied" } else { "failed" }.into()),
            at_us: at(&body["outcome"]["finished_at"]),
            ..RecordIndex::default()
        },
        RecordKind::Prune => RecordIndex { at_us: at(&body["at"]), ..RecordIndex::default() },
        RecordKind::Checkpoint => RecordIndex {
            subject: text(&body["checkpoint"]["key"]),
            at_us: at(&body["checkpoint"]["at"]),
            ..RecordIndex::default()
        },
    }
}

fn indexed(kind: RecordKind, body: Value) -> NewRecord {
    let index = index_of(kind, &body);
    new_record(kind, &body, index)
}

/// The records of one run: its header first (with the count of the run's
/// records, so a removed tail is seen), the control mapping, the waivers in
/// force, every evidence and every gap.
pub fn run_records(run: &Run, frameworks: &[Arc<dyn Framework>], waivers: &[Waiver], source: &str) -> Vec<NewRecord> {
    let run_id = run.id.to_string();
    let mut controls = serde_json::Map::new();
    for f in &crate::framework::with_declared_controls(frameworks, &run.declared_controls) {
        let mapping: serde_json::Map<String, Value> =
            f.controls().iter().map(|c| (c.id.clone(), json!(c.checks))).collect();
        controls.insert(f.id().to_owned(), Value::Object(mapping));
    }
    let mut body = Vec::with_capacity(run.evidence.len() + run.gaps.len() + waivers.len() + 1);
    body.push(indexed(RecordKind::Controls, json!({ "run_id": run_id, "frameworks": controls })));
    for w in waivers {
        body.push(indexed(RecordKind::Waiver, json!({ "run_id": run_id, "waiver": w })));
    }
    // Most of a run's records, each built on its own: on every core.
    body.par_extend(
        run.evidence.par_iter().map(|e| indexed(RecordKind::Evidence, json!({ "run_id": run_id, "evidence": e }))),
    );
    for g in &run.gaps {
        body.push(indexed(RecordKind::Gap, json!({ "run_id": run_id, "gap": g })));
    }
    let failures = run.evidence.iter().filter(|e| e.is_unwaived_failure()).count();
    let mut header = json!({
        "id": run_id,
        "source": source,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "evidence": run.evidence.len(),
        "failures": failures,
        "gaps": run.gaps.len(),
        "records": body.len() + 1,
    });
    // Kept with the run, so that a report rebuilt from the store maps them as the first one did.
    if !run.declared_controls.is_empty() {
        header["declared_controls"] = json!(run.declared_controls);
    }
    // The targets' names and tags, for per-target reports rebuilt from the store.
    if !run.targets.is_empty() {
        header["targets"] = json!(run.targets);
    }
    let mut records = Vec::with_capacity(body.len() + 1);
    records.push(indexed(RecordKind::Run, header));
    records.extend(body);
    records
}

/// A plan record (`pending`).
pub fn plan_record(plan: &RemediationPlan, run_id: Option<&str>) -> NewRecord {
    indexed(RecordKind::Plan, json!({ "run_id": run_id, "plan": plan }))
}

/// A decision record: who approved or rejected a plan, when, why.
pub fn decision_record(plan_id: &str, approved: bool, by: &str, reason: &str, at: DateTime<Utc>) -> NewRecord {
    let decision = if approved { "approved" } else { "rejected" };
    indexed(
        RecordKind::Decision,
        json!({ "plan_id": plan_id, "decision": decision, "by": by, "reason": reason, "at": at }),
    )
}

/// An outcome record.
pub fn outcome_record(outcome: &RemediationOutcome) -> NewRecord {
    indexed(RecordKind::Outcome, json!({ "outcome": outcome }))
}

/// A pruning note: every record up to `last_seq` was removed; `last_hash`
/// is that record's hash, so the chain stays verifiable from the first
/// record kept.
pub fn prune_record(last_seq: i64, last_hash: &str, runs: usize, records: u64, at: DateTime<Utc>) -> NewRecord {
    indexed(
        RecordKind::Prune,
        json!({ "last_seq": last_seq, "last_hash": last_hash, "runs": runs, "records": records, "at": at }),
    )
}

/// A checkpoint record: `checkpoint` is a signed statement of the chain's
/// head (`seq`, `hash`, `at`, `key`, `signature`); the signing lives in
/// `compliance-attest`, which also verifies it.
pub fn checkpoint_record(checkpoint: Value) -> NewRecord {
    indexed(RecordKind::Checkpoint, json!({ "checkpoint": checkpoint }))
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredRun {
    /// The run's id.
    pub id: String,
    /// What produced it (`scan`, `monitor`, `watch`).
    pub source: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// Evidence count.
    pub evidence: usize,
    /// Unwaived failures.
    pub failures: usize,
    /// Gaps.
    pub gaps: usize,
    /// Position of its header in the chain.
    pub seq: i64,
    /// Hash of its header record.
    pub hash: String,
    /// Controls its sources declared while collecting ([`crate::DeclaredControl`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_controls: Vec<crate::DeclaredControl>,
    /// The targets it reached, with their names and tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::Target>,
}

impl StoredRun {
    /// From a run header record.
    pub fn from_record(record: &Record) -> Option<Self> {
        let body: Value = serde_json::from_str(&record.body).ok()?;
        let time =
            |key: &str| body[key].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.to_utc());
        let count = |key: &str| body[key].as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        Some(Self {
            id: body["id"].as_str()?.to_owned(),
            source: body["source"].as_str().unwrap_or_default().to_owned(),
            started_at: time("started_at")?,
            finished_at: time("finished_at")?,
            evidence: count("evidence"),
            failures: count("failures"),
            gaps: count("gaps"),
            seq: record.seq,
            hash: record.hash.clone(),
            declared_controls: serde_json::from_value(body["declared_controls"].clone()).unwrap_or_default(),
            targets: serde_json::from_value(body["targets"].clone()).unwrap_or_default(),
        })
    }
}

/// Decodes the evidence of an evidence record.
pub fn evidence_of(record: &Record) -> Result<Evidence, StoreError> {
    let mut body: Value = serde_json::from_str(&record.body).map_err(|e| StoreError::corrupt(record.seq, e))?;
    serde_json::from_value(body["evidence"].take()).map_err(|e| StoreError::corrupt(record.seq, e))
}
