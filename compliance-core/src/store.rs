//! Evidence history: the [`EvidenceStore`] trait, and the tamper-evident
//! record chain every backend shares.
//!
//! Everything a store keeps is an append-only [`Record`]: a run's header,
//! its evidence, gaps, waivers in force and control mapping, remediation
//! plans, decisions and outcomes, and pruning notes. Each record holds the
//! canonical JSON of what it records and a SHA-256 hash over the previous
//! record's hash, its position and that JSON; [`verify_chain`] walks the
//! chain and names the first record that was changed, removed or moved.
//! Backends (the in-memory one in `testkit`, SQLite and PostgreSQL in
//! `compliance-store`) only keep rows; the chain logic lives here, once.
//!
//! ```
//! use compliance_core::store::{GENESIS, RecordKind, seal};
//! let first = seal(GENESIS, 1, RecordKind::Run, r#"{"id":"r1"}"#);
//! let second = seal(&first, 2, RecordKind::Evidence, r#"{"check_id":"k8s.pod.run_as_non_root"}"#);
//! assert_ne!(first, second);
//! assert_eq!(first.len(), 64);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

/// The chain's last record: where the next append links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Its position (0 when the chain is empty).
    pub seq: i64,
    /// Its hash ([`GENESIS`] when empty).
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self { seq: 0, hash: GENESIS.to_owned() }
    }
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
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
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
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn new_record(kind: RecordKind, body: &Value, index: RecordIndex) -> NewRecord {
    NewRecord { kind, body: canonical_json(body), index }
}

/// The index a body implies: what [`verify_chain`] compares a stored
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
    for f in frameworks {
        let mapping: serde_json::Map<String, Value> =
            f.controls().iter().map(|c| (c.id.clone(), json!(c.checks))).collect();
        controls.insert(f.id().to_owned(), Value::Object(mapping));
    }
    let mut body = Vec::with_capacity(run.evidence.len() + run.gaps.len() + waivers.len() + 1);
    body.push(indexed(RecordKind::Controls, json!({ "run_id": run_id, "frameworks": controls })));
    for w in waivers {
        body.push(indexed(RecordKind::Waiver, json!({ "run_id": run_id, "waiver": w })));
    }
    for e in &run.evidence {
        body.push(indexed(RecordKind::Evidence, json!({ "run_id": run_id, "evidence": e })));
    }
    for g in &run.gaps {
        body.push(indexed(RecordKind::Gap, json!({ "run_id": run_id, "gap": g })));
    }
    let failures = run.evidence.iter().filter(|e| e.is_unwaived_failure()).count();
    let header = json!({
        "id": run_id,
        "source": source,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "evidence": run.evidence.len(),
        "failures": failures,
        "gaps": run.gaps.len(),
        "records": body.len() + 1,
    });
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
        })
    }
}

/// Decodes the evidence of an evidence record.
pub fn evidence_of(record: &Record) -> Result<Evidence, StoreError> {
    let mut body: Value = serde_json::from_str(&record.body).map_err(|e| StoreError::corrupt(record.seq, e))?;
    serde_json::from_value(body["evidence"].take()).map_err(|e| StoreError::corrupt(record.seq, e))
}

/// Where a plan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanState {
    /// Waiting for a decision.
    Pending,
    /// Approved, not applied yet.
    Approved,
    /// Rejected.
    Rejected,
    /// Applied (see the outcome's verification).
    Applied,
    /// Applying failed.
    Failed,
}

impl PlanState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Pending => "pending",
            PlanState::Approved => "approved",
            PlanState::Rejected => "rejected",
            PlanState::Applied => "applied",
            PlanState::Failed => "failed",
        }
    }
}

/// A decision on a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Decision {
    /// Approved or not.
    pub approved: bool,
    /// Who decided.
    pub by: String,
    /// Why, if given.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A plan with its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredPlan {
    /// The plan.
    pub plan: RemediationPlan,
    /// The run whose failure it fixes.
    pub run_id: Option<String>,
    /// Where it stands.
    pub state: PlanState,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// The outcome, once applied.
    pub outcome: Option<RemediationOutcome>,
}

/// Folds a plan's records (plan, decisions, outcomes, in chain order) into
/// where it stands.
pub fn fold_plan(records: &[Record]) -> Result<Option<StoredPlan>, StoreError> {
    let mut stored: Option<StoredPlan> = None;
    for record in records {
        let mut body: Value = serde_json::from_str(&record.body).map_err(|e| StoreError::corrupt(record.seq, e))?;
        match record.kind {
            RecordKind::Plan => {
                let plan =
                    serde_json::from_value(body["plan"].take()).map_err(|e| StoreError::corrupt(record.seq, e))?;
                let run_id = body["run_id"].as_str().map(str::to_owned);
                stored = Some(StoredPlan { plan, run_id, state: PlanState::Pending, decision: None, outcome: None });
            }
            RecordKind::Decision => {
                if let Some(s) = stored.as_mut() {
                    let decision: Decision = Decision {
                        approved: body["decision"] == "approved",
                        by: body["by"].as_str().unwrap_or_default().to_owned(),
                        reason: body["reason"].as_str().unwrap_or_default().to_owned(),
                        at: body["at"]
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map_or_else(Utc::now, |t| t.to_utc()),
                    };
                    s.state = if decision.approved { PlanState::Approved } else { PlanState::Rejected };
                    s.decision = Some(decision);
                }
            }
            RecordKind::Outcome => {
                if let Some(s) = stored.as_mut() {
                    let outcome: RemediationOutcome = serde_json::from_value(body["outcome"].take())
                        .map_err(|e| StoreError::corrupt(record.seq, e))?;
                    s.state = if outcome.applied { PlanState::Applied } else { PlanState::Failed };
                    s.outcome = Some(outcome);
                }
            }
            _ => {}
        }
    }
    Ok(stored)
}

/// How much history to keep. Both limits apply when both are set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Retention {
    /// Keep runs that started within this many days.
    pub max_age_days: Option<u32>,
    /// Keep this many most recent runs.
    pub max_runs: Option<usize>,
}

impl PruneReport {
    /// What a prune removed.
    pub fn new(runs: usize, records: u64, until: Option<(i64, String)>) -> Self {
        Self { runs, records, until }
    }
}

impl Retention {
    /// Keeps runs of the last `days` days.
    pub fn days(days: u32) -> Self {
        Self { max_age_days: Some(days), max_runs: None }
    }

    /// Keeps the last `runs` runs.
    pub fn runs(runs: usize) -> Self {
        Self { max_age_days: None, max_runs: Some(runs) }
    }

    /// The first run (index into `runs`, oldest first) to keep.
    pub fn first_kept(&self, runs: &[StoredRun], now: DateTime<Utc>) -> usize {
        let mut first = 0;
        if let Some(n) = self.max_runs {
            first = first.max(runs.len().saturating_sub(n));
        }
        if let Some(days) = self.max_age_days {
            let cutoff = now - chrono::Duration::days(i64::from(days));
            first = first.max(runs.iter().position(|r| r.started_at >= cutoff).unwrap_or(runs.len()));
        }
        first
    }
}

/// What pruning removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Runs removed.
    pub runs: usize,
    /// Records removed.
    pub records: u64,
    /// The last removed position and its hash (kept in the chain).
    pub until: Option<(i64, String)>,
}

/// The first thing wrong with a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChainProblem {
    /// The record's content no longer matches its hash (or its indexed
    /// columns no longer match its content).
    Changed {
        /// The record.
        seq: i64,
        /// What differs.
        detail: String,
    },
    /// Records are missing.
    Removed {
        /// The first missing position.
        seq: i64,
        /// What is missing.
        detail: String,
    },
    /// The record does not follow the one before it: records were moved,
    /// or one was removed and the rest renumbered.
    Reordered {
        /// The record.
        seq: i64,
        /// What was expected.
        detail: String,
    },
}

impl ChainProblem {
    /// The position of the record at fault.
    pub fn seq(&self) -> i64 {
        match self {
            ChainProblem::Changed { seq, .. }
            | ChainProblem::Removed { seq, .. }
            | ChainProblem::Reordered { seq, .. } => *seq,
        }
    }
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Changed { seq, detail } => write!(f, "record {seq} was changed: {detail}"),
            ChainProblem::Removed { seq, detail } => write!(f, "record {seq} was removed: {detail}"),
            ChainProblem::Reordered { seq, detail } => write!(f, "record {seq} is out of order: {detail}"),
        }
    }
}

/// What [`verify_chain`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainReport {
    /// Records checked.
    pub records: u64,
    /// Runs checked.
    pub runs: u64,
    /// The last record's position and hash: keep it elsewhere (a ticket, a
    /// log) to make the whole history checkable later.
    pub head: ChainHead,
    /// The first problem, if any.
    pub problem: Option<ChainProblem>,
}

impl ChainReport {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Walks records in `seq` order, checking each against its hash, its
/// predecessor, the pruning notes and the stored head: the whole chain in
/// memory. Backends with many records feed a [`ChainVerifier`] page by page.
pub fn verify_chain(
    records: impl IntoIterator<Item = Record>,
    prunes: &[Record],
    stored_head: &ChainHead,
) -> ChainReport {
    let mut verifier = ChainVerifier::new(prunes);
    for record in records {
        if !verifier.push(&record) {
            break;
        }
    }
    verifier.finish(stored_head)
}

/// Checks a chain one record at a time, in `seq` order.
#[derive(Debug)]
pub struct ChainVerifier {
    /// Pruning removes a prefix of the chain; its note gives the hash of the last removed record.
    pruned_until: HashMap<i64, String>,
    report: ChainReport,
    expected_seq: i64,
    prev: String,
    /// Run headers say how many records their run has: a removed tail shows.
    open_run: Option<(String, i64, u64)>,
}

impl ChainVerifier {
    /// A verifier that knows the chain's prune records.
    pub fn new(prunes: &[Record]) -> Self {
        let pruned_until = prunes
            .iter()
            .filter_map(|p| {
                let body: Value = serde_json::from_str(&p.body).ok()?;
                Some((body["last_seq"].as_i64()?, body["last_hash"].as_str()?.to_owned()))
            })
            .collect();
        Self { pruned_until, report: ChainReport::default(), expected_seq: 1, prev: GENESIS.to_owned(), open_run: None }
    }

    fn fail(&mut self, problem: ChainProblem) -> bool {
        self.report.problem = Some(problem);
        false
    }

    /// Checks the next record; `false` once a problem is found.
    pub fn push(&mut self, record: &Record) -> bool {
        if self.report.problem.is_some() {
            return false;
        }
        if self.report.records == 0
            && record.seq > 1
            && let Some(hash) = self.pruned_until.get(&(record.seq - 1))
        {
            self.expected_seq = record.seq;
            self.prev = hash.clone();
        }
        if record.seq > self.expected_seq {
            let detail = format!("record {} follows record {}", record.seq, self.expected_seq - 1);
            let seq = self.expected_seq;
            return self.fail(ChainProblem::Removed { seq, detail });
        }
        if record.seq < self.expected_seq {
            let detail = format!("position {} appears twice", record.seq);
            return self.fail(ChainProblem::Reordered { seq: record.seq, detail });
        }
        if seal(&record.prev_hash, record.seq, record.kind, &record.body) != record.hash {
            // A genuine record moved to another position still matches its hash at its old one.
            let moved_from = (record.seq.saturating_sub(256)..=record.seq.saturating_add(256))
                .find(|s| *s != record.seq && seal(&record.prev_hash, *s, record.kind, &record.body) == record.hash);
            if let Some(original) = moved_from {
                let detail = format!("it was written at position {original}");
                return self.fail(ChainProblem::Reordered { seq: record.seq, detail });
            }
            let detail = "its content does not match its hash".to_owned();
            return self.fail(ChainProblem::Changed { seq: record.seq, detail });
        }
        let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
        if index_of(record.kind, &body) != record.index {
            let detail = "its indexed columns (check, resource, status, time) do not match its content".to_owned();
            return self.fail(ChainProblem::Changed { seq: record.seq, detail });
        }
        if record.prev_hash != self.prev {
            let detail =
                format!("it does not link to record {} (a record was moved, inserted or removed)", record.seq - 1);
            return self.fail(ChainProblem::Reordered { seq: record.seq, detail });
        }
        if let Some((id, header, left)) = self.open_run.take()
            && left > 0
        {
            if record.index.run_id.as_deref() != Some(id.as_str()) {
                let detail =
                    format!("run {id} (record {header}) is missing {left} records before record {}", record.seq);
                return self.fail(ChainProblem::Removed { seq: record.seq, detail });
            }
            self.open_run = Some((id, header, left - 1));
        }
        if record.kind == RecordKind::Run {
            self.report.runs += 1;
            let count = body["records"].as_u64().unwrap_or(1);
            self.open_run =
                Some((record.index.run_id.clone().unwrap_or_default(), record.seq, count.saturating_sub(1)));
        }
        self.report.records += 1;
        self.prev = record.hash.clone();
        self.report.head = ChainHead { seq: record.seq, hash: record.hash.clone() };
        self.expected_seq = record.seq + 1;
        true
    }

    /// The report, after the last record; `stored_head` is the head the
    /// store keeps, so a removed tail shows.
    pub fn finish(mut self, stored_head: &ChainHead) -> ChainReport {
        if self.report.problem.is_some() {
            return self.report;
        }
        if let Some((id, header, left)) = self.open_run.take()
            && left > 0
        {
            let detail = format!("run {id} (record {header}) is missing its last {left} records");
            let seq = self.expected_seq;
            self.fail(ChainProblem::Removed { seq, detail });
            return self.report;
        }
        if stored_head.seq != self.report.head.seq || stored_head.hash != self.report.head.hash {
            let detail =
                format!("the chain ends at record {} but its head says {}", self.report.head.seq, stored_head.seq);
            let seq = self.report.head.seq + 1;
            self.fail(ChainProblem::Removed { seq, detail });
        }
        self.report
    }
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database or file cannot be reached or used.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(String),
    /// A stored record cannot be read back.
    #[error("record {seq} cannot be read: {reason}")]
    Corrupt {
        /// The record.
        seq: i64,
        /// Why.
        reason: String,
    },
    /// No such plan.
    #[error("no remediation plan {0}")]
    UnknownPlan(String),
    /// The plan is not in a state that allows this.
    #[error("plan {id} is {state}: {action} is not possible")]
    PlanState {
        /// The plan.
        id: String,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// The URL names no supported backend.
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// A record that cannot be decoded.
    pub fn corrupt(seq: i64, e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt { seq, reason: e.to_string() }
    }
}

/// Evidence history. Every backend keeps the same [`Record`] chain; the
/// queries are the ones auditors ask.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Appends records atomically after the current head (concurrent
    /// writers are serialised); returns them sealed.
    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError>;

    /// Stores a run: header, control mapping, waivers in force, evidence, gaps.
    async fn append_run(
        &self,
        run: &Run,
        frameworks: &[Arc<dyn Framework>],
        waivers: &[Waiver],
        source: &str,
    ) -> Result<StoredRun, StoreError> {
        let sealed = self.append(run_records(run, frameworks, waivers, source)).await?;
        sealed
            .first()
            .and_then(StoredRun::from_record)
            .ok_or_else(|| StoreError::Query("the run header was not stored".into()))
    }

    /// Runs that started in `[from, to)`, oldest first (`None`: unbounded).
    async fn runs(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<Vec<StoredRun>, StoreError>;

    /// The evidence of one run, in stored order.
    async fn run_evidence(&self, run_id: &str) -> Result<Vec<Evidence>, StoreError>;

    /// The latest evidence per check and resource.
    async fn latest(&self) -> Result<Vec<Evidence>, StoreError>;

    /// Every evidence about one resource, oldest first.
    async fn history(&self, resource_id: &str) -> Result<Vec<Evidence>, StoreError>;

    /// The evidence of the checks mapped to one control (as mapped when
    /// each run was stored), observed in `[from, to)`.
    async fn control_evidence(
        &self,
        framework: &str,
        control: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Evidence>, StoreError>;

    /// Stores a plan as pending.
    async fn save_plan(&self, plan: &RemediationPlan, run_id: Option<&str>) -> Result<StoredPlan, StoreError> {
        self.append(vec![plan_record(plan, run_id)]).await?;
        self.plan(&plan.id).await?.ok_or_else(|| StoreError::UnknownPlan(plan.id.clone()))
    }

    /// One plan and its history.
    async fn plan(&self, id: &str) -> Result<Option<StoredPlan>, StoreError>;

    /// Every plan, optionally in one state, oldest first.
    async fn plans(&self, state: Option<PlanState>) -> Result<Vec<StoredPlan>, StoreError>;

    /// Approves or rejects a pending plan, recording who and when.
    async fn decide(&self, id: &str, approved: bool, by: &str, reason: &str) -> Result<StoredPlan, StoreError> {
        let plan = self.plan(id).await?.ok_or_else(|| StoreError::UnknownPlan(id.to_owned()))?;
        if plan.state != PlanState::Pending {
            let action = if approved { "approval" } else { "rejection" };
            return Err(StoreError::PlanState { id: id.to_owned(), state: plan.state.as_str(), action });
        }
        self.append(vec![decision_record(id, approved, by, reason, Utc::now())]).await?;
        self.plan(id).await?.ok_or_else(|| StoreError::UnknownPlan(id.to_owned()))
    }

    /// Records what applying a plan did.
    async fn record_outcome(&self, outcome: &RemediationOutcome) -> Result<StoredPlan, StoreError> {
        self.append(vec![outcome_record(outcome)]).await?;
        self.plan(&outcome.plan_id).await?.ok_or_else(|| StoreError::UnknownPlan(outcome.plan_id.clone()))
    }

    /// Walks the whole chain (see [`verify_chain`]).
    async fn verify(&self) -> Result<ChainReport, StoreError>;

    /// Removes the oldest runs beyond `retention`, and records the hash of
    /// what was removed so the chain stays verifiable.
    async fn prune(&self, retention: &Retention) -> Result<PruneReport, StoreError>;
}
