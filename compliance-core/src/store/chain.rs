//! The chain: its head, and the verification that names the first record
//! changed, removed or moved.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{GENESIS, Record, RecordKind, index_of, seal};

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
    /// The database itself is damaged (its own integrity check fails), or
    /// a table derived from the chain (such as the control mapping of each
    /// run) no longer matches it.
    Damaged {
        /// The record the damage concerns, or 0 when it concerns none.
        seq: i64,
        /// What is wrong.
        detail: String,
    },
}

impl ChainProblem {
    /// The position of the record at fault.
    pub fn seq(&self) -> i64 {
        match self {
            ChainProblem::Changed { seq, .. }
            | ChainProblem::Removed { seq, .. }
            | ChainProblem::Reordered { seq, .. }
            | ChainProblem::Damaged { seq, .. } => *seq,
        }
    }
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Changed { seq, detail } => write!(f, "record {seq} was changed: {detail}"),
            ChainProblem::Removed { seq, detail } => write!(f, "record {seq} was removed: {detail}"),
            ChainProblem::Reordered { seq, detail } => write!(f, "record {seq} is out of order: {detail}"),
            ChainProblem::Damaged { seq: 0, detail } => write!(f, "the store is damaged: {detail}"),
            ChainProblem::Damaged { seq, detail } => write!(f, "the store is damaged at record {seq}: {detail}"),
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

/// What a record says of itself, checked without the records around it.
struct OwnCheck {
    /// Its hash is the seal of its content.
    sealed: bool,
    /// Its indexed columns are what its body implies.
    indexed: bool,
    /// A run header: how many records the run has.
    run_records: Option<u64>,
}

impl OwnCheck {
    fn of(record: &Record) -> Self {
        let sealed = seal(&record.prev_hash, record.seq, record.kind, &record.body) == record.hash;
        let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
        let indexed = index_of(record.kind, &body) == record.index;
        let run_records = (record.kind == RecordKind::Run).then(|| body["records"].as_u64()).flatten();
        Self { sealed, indexed, run_records }
    }
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

    /// Checks the next records, in order; `false` once a problem is found.
    /// What each record says of itself (its hash, its indexed columns) is
    /// checked on every core; how records link is then checked in order, as
    /// [`push`](Self::push) does, so the first problem found is the same.
    pub fn push_all(&mut self, records: &[Record]) -> bool {
        let own: Vec<OwnCheck> = records.par_iter().map(OwnCheck::of).collect();
        records.iter().zip(own).all(|(record, own)| self.push_checked(record, own))
    }

    /// Checks the next record; `false` once a problem is found.
    pub fn push(&mut self, record: &Record) -> bool {
        self.push_checked(record, OwnCheck::of(record))
    }

    fn push_checked(&mut self, record: &Record, own: OwnCheck) -> bool {
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
        if !own.sealed {
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
        if !own.indexed {
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
            let count = own.run_records.unwrap_or(1);
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
