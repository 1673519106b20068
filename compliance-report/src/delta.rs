//! What changed between two runs: the base of drift alerts and of "what
//! changed since the audit".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use compliance_core::{CheckId, Evidence, Status};
use serde::{Deserialize, Serialize};

use crate::model::{ControlStatus, Report};

/// One evidence that changed, by check and resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Change {
    /// The check.
    pub check_id: CheckId,
    /// The resource id.
    pub resource: String,
    /// The status before (`None`: not observed).
    pub before: Option<Status>,
    /// The status now (`None`: not observed any more).
    pub after: Option<Status>,
}

/// A control whose result changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlChange {
    /// Framework id.
    pub framework: String,
    /// Control id.
    pub control: String,
    /// Before (`None`: the control was not in the previous report).
    pub before: Option<ControlStatus>,
    /// Now.
    pub after: ControlStatus,
}

/// Counts per check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckDelta {
    /// New unwaived failures.
    pub new_failures: usize,
    /// Failures that now pass or no longer apply.
    pub resolved: usize,
    /// Failures in both runs.
    pub still_failing: usize,
    /// Evidence that could not be judged now but could before.
    pub new_gaps: usize,
}

/// The difference between a previous report and this one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delta {
    /// The previous run.
    pub previous_run_id: Option<uuid::Uuid>,
    /// When the previous report was made.
    pub previous_generated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Unwaived failures that are new (passing, unjudged or unseen before).
    pub new_failures: Vec<Change>,
    /// Failures that now pass or no longer apply.
    pub resolved: Vec<Change>,
    /// Failures in both runs.
    pub still_failing: Vec<Change>,
    /// Failing resources not observed in this run (deleted, or out of scope).
    pub no_longer_observed: Vec<Change>,
    /// Evidence that could not be judged now, and could before (or is new).
    pub new_gaps: Vec<Change>,
    /// Sources that could not be read now and could before (`collector: source`).
    pub new_source_gaps: Vec<String>,
    /// Per check.
    pub by_check: BTreeMap<CheckId, CheckDelta>,
    /// Per target (`aws:<account>`, `aws:<account>:<region>`,
    /// `k8s:<context>`): a regional change counts for its region and its
    /// account (added in schema 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_target: BTreeMap<String, CheckDelta>,
    /// Controls whose result changed.
    pub controls: Vec<ControlChange>,
}

fn key(e: &Evidence) -> (CheckId, String) {
    (e.check_id.clone(), e.resource.id.clone())
}

/// The targets a change counts for: its cluster, or its account and region.
fn targets_of(resource: &compliance_core::ResourceRef) -> Vec<String> {
    use compliance_core::target::{aws_account_id, target_of};
    let mut targets: Vec<String> = target_of(resource).into_iter().collect();
    if resource.cluster.is_none()
        && resource.region.is_some()
        && let Some(account) = &resource.account
    {
        targets.push(aws_account_id(account));
    }
    targets
}

fn is_open_failure(e: &Evidence) -> bool {
    e.is_unwaived_failure()
}

impl Delta {
    /// The changes from `previous` to `current`.
    ///
    /// ```
    /// # use compliance_report::{Delta, Report};
    /// # fn demo(previous: &Report, current: &Report) {
    /// let delta = Delta::between(previous, current);
    /// println!("{} new failures, {} resolved", delta.new_failures.len(), delta.resolved.len());
    /// # }
    /// ```
    pub fn between(previous: &Report, current: &Report) -> Delta {
        let before: HashMap<(CheckId, String), &Evidence> = previous.evidence.iter().map(|e| (key(e), e)).collect();
        let after: HashMap<(CheckId, String), &Evidence> = current.evidence.iter().map(|e| (key(e), e)).collect();
        let mut d = Delta {
            previous_run_id: Some(previous.run_id),
            previous_generated_at: Some(previous.generated_at),
            ..Delta::default()
        };
        for (k, now) in &after {
            let was = before.get(k);
            let change = Change {
                check_id: k.0.clone(),
                resource: k.1.clone(),
                before: was.map(|e| e.status),
                after: Some(now.status),
            };
            let was_failing = was.is_some_and(|e| is_open_failure(e));
            let (counted, list): (fn(&mut CheckDelta), &mut Vec<Change>) = if is_open_failure(now) {
                if was_failing {
                    (|c| c.still_failing += 1, &mut d.still_failing)
                } else {
                    (|c| c.new_failures += 1, &mut d.new_failures)
                }
            } else if was_failing && matches!(now.status, Status::Pass | Status::NotApplicable) {
                (|c| c.resolved += 1, &mut d.resolved)
            } else if now.status == Status::Error && was.is_none_or(|e| e.status != Status::Error) {
                (|c| c.new_gaps += 1, &mut d.new_gaps)
            } else {
                continue;
            };
            list.push(change);
            counted(d.by_check.entry(k.0.clone()).or_default());
            for target in targets_of(&now.resource) {
                counted(d.by_target.entry(target).or_default());
            }
        }
        // A target this run did not reach (another shard's, or one that failed) tells nothing about its resources.
        // Not observed tells something only where this run looked: the account or cluster gave
        // evidence now (a shard's own; not one whose role was refused), and no gap names it.
        let owner = |r: &compliance_core::ResourceRef| match (&r.cluster, &r.account) {
            (Some(c), _) => Some(compliance_core::target::k8s_cluster_id(c)),
            (None, Some(a)) => Some(compliance_core::target::aws_account_id(a)),
            (None, None) => None,
        };
        let reached: BTreeSet<String> = current.evidence.iter().filter_map(|e| owner(&e.resource)).collect();
        let gapped: BTreeSet<&str> = current.gaps.iter().filter_map(|g| g.target.as_deref()).collect();
        let unreached = |e: &Evidence| {
            owner(&e.resource).is_some_and(|o| {
                !reached.contains(&o) || gapped.iter().any(|g| *g == o || g.starts_with(&format!("{o}:")))
            })
        };
        for (k, was) in &before {
            if is_open_failure(was) && !after.contains_key(k) && !unreached(was) {
                d.no_longer_observed.push(Change {
                    check_id: k.0.clone(),
                    resource: k.1.clone(),
                    before: Some(was.status),
                    after: None,
                });
            }
        }
        let gap_key = |g: &compliance_core::Gap| {
            format!("{}: {}", g.collector, g.source.as_deref().unwrap_or("(whole collector)"))
        };
        let old_gaps: BTreeSet<String> = previous.gaps.iter().map(gap_key).collect();
        d.new_source_gaps = current.gaps.iter().map(gap_key).filter(|g| !old_gaps.contains(g)).collect();
        for f in &current.frameworks {
            let old = previous.frameworks.iter().find(|p| p.id == f.id);
            for c in &f.controls {
                let was = old.and_then(|o| o.controls.iter().find(|p| p.id == c.id)).map(|p| p.status);
                if was != Some(c.status) {
                    d.controls.push(ControlChange {
                        framework: f.id.clone(),
                        control: c.id.clone(),
                        before: was,
                        after: c.status,
                    });
                }
            }
        }
        d.by_check.retain(|_, c| *c != CheckDelta::default());
        d.by_target.retain(|_, c| *c != CheckDelta::default());
        for list in
            [&mut d.new_failures, &mut d.resolved, &mut d.still_failing, &mut d.no_longer_observed, &mut d.new_gaps]
        {
            list.sort();
        }
        d
    }

    /// One line for people: what changed.
    pub fn summary_line(&self) -> String {
        format!(
            "Since the previous run: {} new failures, {} resolved, {} still failing, {} no longer observed, {} new gaps",
            self.new_failures.len(),
            self.resolved.len(),
            self.still_failing.len(),
            self.no_longer_observed.len(),
            self.new_gaps.len() + self.new_source_gaps.len()
        )
    }
}
