//! Remediation plans: where a plan stands, folded from its records, and
//! the state machine every store follows ([`EvidenceStoreExt`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EvidenceStore, Record, RecordKind, StoreError, decision_record, outcome_record, plan_record};
use crate::remediation::{RemediationOutcome, RemediationPlan};

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

/// Times a decision is re-checked when other records keep arriving.
const DECIDE_ATTEMPTS: usize = 20;

/// The plan state machine, built on [`EvidenceStore`]'s primitives for
/// every store: a plan is saved pending, decided once, then closed by its
/// outcome. Implemented for every [`EvidenceStore`] and only through that
/// blanket implementation, so no backend can change the rules.
#[async_trait]
pub trait EvidenceStoreExt: EvidenceStore {
    /// Stores a plan as pending.
    async fn save_plan(&self, plan: &RemediationPlan, run_id: Option<&str>) -> Result<StoredPlan, StoreError>;

    /// Approves or rejects a pending plan, recording who and when.
    async fn decide(&self, id: &str, approved: bool, by: &str, reason: &str) -> Result<StoredPlan, StoreError>;

    /// Records what applying a plan did.
    async fn record_outcome(&self, outcome: &RemediationOutcome) -> Result<StoredPlan, StoreError>;
}

#[async_trait]
impl<T: EvidenceStore + ?Sized> EvidenceStoreExt for T {
    async fn save_plan(&self, plan: &RemediationPlan, run_id: Option<&str>) -> Result<StoredPlan, StoreError> {
        self.append(vec![plan_record(plan, run_id)]).await?;
        self.plan(&plan.id).await?.ok_or_else(|| StoreError::UnknownPlan(plan.id.clone()))
    }

    async fn decide(&self, id: &str, approved: bool, by: &str, reason: &str) -> Result<StoredPlan, StoreError> {
        // The state is checked at a head, and the decision is recorded only
        // if the head has not moved: two approvers, or an approval racing a
        // rejection, cannot both be recorded.
        for _ in 0..DECIDE_ATTEMPTS {
            let head = self.head().await?;
            let plan = self.plan(id).await?.ok_or_else(|| StoreError::UnknownPlan(id.to_owned()))?;
            if plan.state != PlanState::Pending {
                let action = if approved { "approval" } else { "rejection" };
                return Err(StoreError::PlanState { id: id.to_owned(), state: plan.state.as_str(), action });
            }
            let decision = decision_record(id, approved, by, reason, Utc::now());
            if self.append_if_head(&head, vec![decision]).await?.is_some() {
                return self.plan(id).await?.ok_or_else(|| StoreError::UnknownPlan(id.to_owned()));
            }
        }
        Err(StoreError::Query {
            message: format!("plan {id}: the store kept changing; the decision was not recorded, try again"),
            source: None,
        })
    }

    async fn record_outcome(&self, outcome: &RemediationOutcome) -> Result<StoredPlan, StoreError> {
        self.append(vec![outcome_record(outcome)]).await?;
        self.plan(&outcome.plan_id).await?.ok_or_else(|| StoreError::UnknownPlan(outcome.plan_id.clone()))
    }
}
