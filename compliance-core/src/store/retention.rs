//! Retention: how much history to keep, and what pruning removed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoredRun;

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

impl PruneReport {
    /// What a prune removed.
    pub fn new(runs: usize, records: u64, until: Option<(i64, String)>) -> Self {
        Self { runs, records, until }
    }
}
