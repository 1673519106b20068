//! Evidence: one observation of one check on one resource at one time.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check::{Check, CheckId, Severity};
use crate::resource::ResourceRef;

/// The verdict of one check on one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The resource complies.
    Pass,
    /// The resource does not comply.
    Fail,
    /// The resource could not be judged: an evidence gap, never counted as a pass.
    Error,
    /// The check does not apply to this resource.
    NotApplicable,
}

impl Status {
    /// The name used in reports: `pass`, `fail`, `error`, `not_applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::NotApplicable => "not_applicable",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of judging one resource with one rule, before it is tied to
/// a resource and a time: what every provider's check functions return.
///
/// ```
/// use compliance_core::{Check, ResourceRef, Severity, Status, Verdict};
/// let check = Check::new("demo.db.encrypted", "Databases are encrypted", Severity::High, "Database")?;
/// let verdict = Verdict::new(Status::Fail, "storage is not encrypted", serde_json::json!({ "encrypted": false }));
/// let evidence = verdict.into_evidence(&check, ResourceRef::new("demo", "Database", "db-1", "db-1"), chrono::Utc::now());
/// assert_eq!(evidence.status, Status::Fail);
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Pass, fail, error or not applicable.
    pub status: Status,
    /// A sentence for people.
    pub message: String,
    /// The facts that led to it; never secret values.
    pub details: serde_json::Value,
}

impl Verdict {
    /// A verdict.
    pub fn new(status: Status, message: impl Into<String>, details: serde_json::Value) -> Self {
        Self { status, message: message.into(), details }
    }

    /// The evidence of this verdict for `check` on `resource`, observed `at`.
    pub fn into_evidence(self, check: &Check, resource: impl Into<Arc<ResourceRef>>, at: DateTime<Utc>) -> Evidence {
        Evidence::new(check, resource, self.status, self.message).with_details(self.details).observed_at(at)
    }
}

/// Marks evidence covered by a waiver. The status stays as observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaiverMark {
    /// The waiver's id.
    pub id: String,
    /// Who owns the accepted risk.
    pub owner: String,
    /// Why the risk is accepted.
    pub reason: String,
    /// When the waiver stops applying.
    pub expires: DateTime<Utc>,
}

/// One observation of one check on one resource at one time.
///
/// `details` holds the facts that led to the verdict (field paths, values that
/// are not secret, container names); never secret values.
///
/// ```
/// use compliance_core::{Check, Evidence, ResourceRef, Severity, Status};
/// let check = Check::new("k8s.container.memory_limit", "Containers set a memory limit", Severity::Medium, "Workload")?;
/// let pod = ResourceRef::new("k8s", "Pod", "manifests/pod.yaml#0/default/Pod/web", "web");
/// let evidence = Evidence::new(&check, pod, Status::Fail, "container web has no memory limit")
///     .with_details(serde_json::json!({"containers_without_limit": ["web"]}));
/// assert_eq!(evidence.severity, Severity::Medium);
/// assert!(evidence.is_failure());
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Evidence {
    /// The check that was applied.
    pub check_id: CheckId,
    /// The verdict.
    pub status: Status,
    /// The check's severity.
    pub severity: Severity,
    /// The resource judged (shared by the evidence of one resource).
    pub resource: Arc<ResourceRef>,
    /// When it was observed (UTC).
    pub observed_at: DateTime<Utc>,
    /// A sentence for people.
    pub message: String,
    /// Facts behind the verdict; never secret values.
    pub details: serde_json::Value,
    /// How to fix a failure.
    #[serde(default)]
    pub remediation: Option<Arc<str>>,
    /// The collector that produced it (set by the engine).
    #[serde(default)]
    pub collector: Arc<str>,
    /// The waiver covering it, if any (shared by the evidence it covers).
    #[serde(default)]
    pub waiver: Option<Arc<WaiverMark>>,
}

impl Evidence {
    /// Evidence for `check` on `resource`, observed now. A failure carries the
    /// check's remediation guidance. Pass an `Arc<ResourceRef>` to share one
    /// resource between the evidence of all its checks.
    pub fn new(
        check: &Check,
        resource: impl Into<Arc<ResourceRef>>,
        status: Status,
        message: impl Into<String>,
    ) -> Self {
        let remediation =
            (status == Status::Fail && !check.remediation.is_empty()).then(|| Arc::clone(&check.remediation));
        Self {
            check_id: check.id.clone(),
            status,
            severity: check.severity,
            resource: resource.into(),
            observed_at: Utc::now(),
            message: message.into(),
            details: serde_json::Value::Object(serde_json::Map::new()),
            remediation,
            collector: Arc::from(""),
            waiver: None,
        }
    }

    /// Sets the details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Sets the observation time.
    pub fn observed_at(mut self, at: DateTime<Utc>) -> Self {
        self.observed_at = at;
        self
    }

    /// Sets the remediation hint.
    pub fn with_remediation(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = Some(Arc::from(remediation.into()));
        self
    }

    /// True for `Fail`.
    pub fn is_failure(&self) -> bool {
        self.status == Status::Fail
    }

    /// True for a failure that no waiver covers.
    pub fn is_unwaived_failure(&self) -> bool {
        self.is_failure() && self.waiver.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_as_contract() {
        let names: Vec<String> = [Status::Pass, Status::Fail, Status::Error, Status::NotApplicable]
            .iter()
            .filter_map(|s| serde_json::to_string(s).ok())
            .collect();
        assert_eq!(names, ["\"pass\"", "\"fail\"", "\"error\"", "\"not_applicable\""]);
    }

    #[test]
    fn remediation_only_on_failure() -> Result<(), crate::Error> {
        let check = Check::new("x.y", "t", Severity::Low, "K")?.with_remediation("fix it");
        let r = ResourceRef::new("x", "K", "id", "n");
        assert_eq!(Evidence::new(&check, r.clone(), Status::Fail, "m").remediation.as_deref(), Some("fix it"));
        assert_eq!(Evidence::new(&check, r, Status::Pass, "m").remediation, None);
        Ok(())
    }
}
