//! Remediation: plans that state exactly what will change, dry run by
//! default, approval for risky plans, re-verification after every change.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check::CheckId;
use crate::error::Result;
use crate::evidence::Evidence;
use crate::resource::ResourceRef;

/// How risky a change is. Ordered: `Low < Medium < High`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Cannot break a workload or lock anyone out (enabling versioning).
    Low,
    /// May change behaviour (restarting pods with a new security context).
    Medium,
    /// May lock people or systems out (disabling a user): needs approval.
    High,
}

/// Dry run (the default) or apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Show and validate what would change; change nothing.
    #[default]
    DryRun,
    /// Make the change, then re-verify it.
    Apply,
}

/// One change of a plan: the exact call and the before and after of one field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Change {
    /// The API call or file write that makes the change
    /// (`PATCH apps/v1 deployments default/web`, `s3:PutBucketVersioning`).
    pub operation: String,
    /// The field changed (`spec.template.spec.securityContext.runAsNonRoot`).
    pub target: String,
    /// Its value before (`null` when absent).
    pub before: serde_json::Value,
    /// Its value after.
    pub after: serde_json::Value,
}

impl Change {
    /// One change.
    pub fn new(
        operation: impl Into<String>,
        target: impl Into<String>,
        before: serde_json::Value,
        after: serde_json::Value,
    ) -> Self {
        Self { operation: operation.into(), target: target.into(), before, after }
    }
}

/// What a remediator will do about one failing evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemediationPlan {
    /// Unique id.
    pub id: String,
    /// The remediator that made it and will apply it.
    pub remediator: String,
    /// The failing check.
    pub check_id: CheckId,
    /// The resource to change.
    pub resource: ResourceRef,
    /// One sentence for people.
    pub summary: String,
    /// Every change, field by field.
    pub changes: Vec<Change>,
    /// The risk of applying it.
    pub risk: Risk,
    /// The exact request body (a patch, a policy document), for review.
    pub payload: serde_json::Value,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
}

impl RemediationPlan {
    /// A plan with a fresh id, created now.
    pub fn new(
        remediator: impl Into<String>,
        evidence: &Evidence,
        summary: impl Into<String>,
        changes: Vec<Change>,
        risk: Risk,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            remediator: remediator.into(),
            check_id: evidence.check_id.clone(),
            resource: ResourceRef::clone(&evidence.resource),
            summary: summary.into(),
            changes,
            risk,
            payload,
            created_at: Utc::now(),
        }
    }
}

/// A decision on a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Approval {
    /// Whether the plan may be applied.
    pub approved: bool,
    /// Who decided.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

impl Approval {
    /// A decision made now.
    pub fn new(approved: bool, by: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { approved, by: by.into(), at: Utc::now(), reason: reason.into() }
    }
}

/// Decides plans whose risk needs a human.
#[async_trait]
pub trait Approver: Send + Sync {
    /// Approves or rejects a plan.
    async fn decide(&self, plan: &RemediationPlan) -> Approval;
}

/// Rejects every plan: the safe default when no human is asked.
#[derive(Clone, Copy, Debug, Default)]
pub struct RejectAll;

#[async_trait]
impl Approver for RejectAll {
    async fn decide(&self, plan: &RemediationPlan) -> Approval {
        Approval::new(
            false,
            "compliance-rs",
            format!("{:?}-risk plans need an approver; none was configured", plan.risk),
        )
    }
}

/// Approves every plan in the name of `by`: for a person who has reviewed
/// the plans (a `--yes` flag) and for tests.
#[derive(Clone, Debug)]
pub struct ApproveAll {
    /// Who approves.
    pub by: String,
}

#[async_trait]
impl Approver for ApproveAll {
    async fn decide(&self, _plan: &RemediationPlan) -> Approval {
        Approval::new(true, self.by.clone(), "approved in advance")
    }
}

/// What applying (or dry-running) a plan did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemediationOutcome {
    /// The plan.
    pub plan_id: String,
    /// Dry run or apply.
    pub mode: Mode,
    /// Whether anything was changed.
    pub applied: bool,
    /// What happened, for people.
    pub message: String,
    /// What was actually done or would be: the server's dry-run answer, the
    /// state needed to undo the change.
    pub record: serde_json::Value,
    /// The check re-run on the resource after the change (`None` on dry run).
    pub verification: Option<Evidence>,
    /// The approval, when one was needed.
    pub approval: Option<Approval>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

impl RemediationOutcome {
    /// An outcome finished now.
    pub fn new(plan: &RemediationPlan, mode: Mode, applied: bool, message: impl Into<String>) -> Self {
        Self {
            plan_id: plan.id.clone(),
            mode,
            applied,
            message: message.into(),
            record: serde_json::Value::Null,
            verification: None,
            approval: None,
            finished_at: Utc::now(),
        }
    }

    /// Sets the record.
    pub fn with_record(mut self, record: serde_json::Value) -> Self {
        self.record = record;
        self
    }

    /// Sets the verification evidence.
    pub fn with_verification(mut self, verification: Evidence) -> Self {
        self.verification = Some(verification);
        self
    }
}

/// Fixes failures of some checks, safely: `plan` first, `apply` in dry run by
/// default, and after a real change, re-verify.
#[async_trait]
pub trait Remediator: Send + Sync {
    /// Stable name.
    fn name(&self) -> &str;
    /// The checks whose failures it can fix.
    fn fixes(&self) -> Vec<CheckId>;
    /// Whether it acts on this evidence's resource: a remediator bound to
    /// one cluster or account says no to the others', so that the engine
    /// asks the one that does. All, by default.
    fn handles(&self, evidence: &Evidence) -> bool {
        let _ = evidence;
        true
    }
    /// Plans a fix for a failing evidence; `None` when there is nothing to do.
    async fn plan(&self, evidence: &Evidence) -> Result<Option<RemediationPlan>>;
    /// Applies a plan (or validates it without change, in [`Mode::DryRun`]),
    /// then re-checks the resource and records what was done.
    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> Result<RemediationOutcome>;
}
