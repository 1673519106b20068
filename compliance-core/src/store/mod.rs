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
//! This file holds the [`EvidenceStore`] trait and [`StoreError`]; records,
//! the chain, plans and retention have a file each, re-exported here.
//!
//! ```
//! use compliance_core::store::{GENESIS, RecordKind, seal};
//! let first = seal(GENESIS, 1, RecordKind::Run, r#"{"id":"r1"}"#);
//! let second = seal(&first, 2, RecordKind::Evidence, r#"{"check_id":"k8s.pod.run_as_non_root"}"#);
//! assert_ne!(first, second);
//! assert_eq!(first.len(), 64);
//! ```

mod chain;
mod plan;
mod record;
mod retention;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use chain::{ChainHead, ChainProblem, ChainReport, ChainVerifier, verify_chain};
pub use plan::{Decision, EvidenceStoreExt, PlanState, StoredPlan, fold_plan};
pub use record::{
    GENESIS, NewRecord, Record, RecordIndex, RecordKind, StoredRun, canonical_json, checkpoint_record, decision_record,
    evidence_of, index_of, outcome_record, plan_record, prune_record, run_records, seal, seal_all,
};
pub use retention::{PruneReport, Retention};

use crate::engine::Run;
use crate::evidence::Evidence;
use crate::framework::Framework;
use crate::waiver::Waiver;

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database or file cannot be reached or used.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What could not be reached, and why (the source's text included).
        message: String,
        /// The driver's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A query failed.
    #[error("store query failed: {message}")]
    Query {
        /// Why (the source's text included).
        message: String,
        /// The driver's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The database file is not a readable database: damaged or replaced.
    #[error("store damaged: {message}")]
    Damaged {
        /// What was found (the source's text included).
        message: String,
        /// The driver's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
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
    /// The store cannot be reached or used: `message`, then the driver's
    /// error, which is kept as the source.
    pub fn unavailable(
        message: impl std::fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable { message: format!("{message}: {source}"), source: Some(Box::new(source)) }
    }

    /// A query failed; the driver's error is kept as the source.
    pub fn query(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Query { message: source.to_string(), source: Some(Box::new(source)) }
    }

    /// A record that cannot be decoded.
    pub fn corrupt(seq: i64, e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt { seq, reason: e.to_string() }
    }
}

/// Evidence history. Every backend keeps the same [`Record`] chain; the
/// queries are the ones auditors ask.
///
/// A backend implements these primitives; plans are saved, decided and
/// closed through [`EvidenceStoreExt`], built on them for every store.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Appends records atomically after the current head (concurrent
    /// writers are serialised); returns them sealed.
    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError>;

    /// Appends records only if the chain's head is still `expected`, in one
    /// atomic step: what was checked against the store at `expected` is
    /// recorded only if nothing was appended since. `Ok(None)` when another
    /// record came first (check again, then retry).
    async fn append_if_head(
        &self,
        expected: &ChainHead,
        records: Vec<NewRecord>,
    ) -> Result<Option<Vec<Record>>, StoreError>;

    /// The chain's head: the last record's position and hash.
    async fn head(&self) -> Result<ChainHead, StoreError>;

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
            .ok_or_else(|| StoreError::Query { message: "the run header was not stored".into(), source: None })
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

    /// One plan and its history.
    async fn plan(&self, id: &str) -> Result<Option<StoredPlan>, StoreError>;

    /// Every plan, optionally in one state, oldest first.
    async fn plans(&self, state: Option<PlanState>) -> Result<Vec<StoredPlan>, StoreError>;

    /// Up to `limit` records after position `after_seq`, in chain order: the
    /// chain itself, read page by page (for exports and for verifying
    /// checkpoints).
    async fn records_after(&self, after_seq: i64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// Walks the whole chain (see [`verify_chain`]).
    async fn verify(&self) -> Result<ChainReport, StoreError>;

    /// Removes the oldest runs beyond `retention`, and records the hash of
    /// what was removed so the chain stays verifiable.
    async fn prune(&self, retention: &Retention) -> Result<PruneReport, StoreError>;
}
