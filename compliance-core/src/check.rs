//! Check metadata: the stable description of one rule.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Stable, dotted, lowercase identifier of a check, such as
/// `k8s.pod.run_as_non_root` or `aws.s3.versioning`.
///
/// Ids are a public contract: once released, an id never changes meaning.
/// At least two segments; each segment is lowercase ASCII letters, digits,
/// `_` or `-` (AWS Config rule names carry dashes), starting with a letter or digit.
///
/// ```
/// use compliance_core::CheckId;
/// let id: CheckId = "k8s.pod.run_as_non_root".parse()?;
/// assert_eq!(id.provider(), "k8s");
/// assert!("K8s.Pod".parse::<CheckId>().is_err());
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
// Shared text: every evidence carries its check id, and clones are frequent.
pub struct CheckId(Arc<str>);

impl CheckId {
    /// Validates and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        let invalid = |reason: &str| Error::InvalidCheckId { id: id.clone(), reason: reason.to_owned() };
        let segments: Vec<&str> = id.split('.').collect();
        if segments.len() < 2 {
            return Err(invalid("needs at least two dot-separated segments"));
        }
        for segment in &segments {
            let mut chars = segment.chars();
            match chars.next() {
                None => return Err(invalid("empty segment")),
                Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
                    return Err(invalid("a segment must start with a lowercase letter or digit"));
                }
                Some(_) => {}
            }
            if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
                return Err(invalid("only lowercase letters, digits, '_' and '-' are allowed"));
            }
        }
        Ok(Self(id.into()))
    }

    /// The id of a check defined by an outside rule: `prefix`, then the
    /// rule's identifier lowercased, with `_` and every character a check
    /// id does not allow turned into `-` (and none at either end). One rule,
    /// so every crate that names such checks names them alike.
    ///
    /// ```
    /// use compliance_core::CheckId;
    /// let id = CheckId::derived("aws.config", "S3_BUCKET_SSL_REQUESTS_ONLY")?;
    /// assert_eq!(id.as_str(), "aws.config.s3-bucket-ssl-requests-only");
    /// # Ok::<(), compliance_core::Error>(())
    /// ```
    pub fn derived(prefix: &str, identifier: &str) -> Result<Self, Error> {
        let tail: String = identifier
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
            .collect();
        Self::new(format!("{prefix}.{}", tail.trim_matches('-')))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first segment: the provider (`k8s`, `aws`, ...).
    pub fn provider(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CheckId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for CheckId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl From<CheckId> for String {
    fn from(id: CheckId) -> String {
        id.0.to_string()
    }
}

impl AsRef<str> for CheckId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// How bad a failure of a check is. Ordered: `Info < Low < Medium < High < Critical`.
///
/// ```
/// use compliance_core::Severity;
/// assert!(Severity::Critical > Severity::High);
/// assert_eq!("high".parse::<Severity>().ok(), Some(Severity::High));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: worth knowing, no risk on its own.
    Info,
    /// Low risk.
    Low,
    /// Medium risk.
    Medium,
    /// High risk.
    High,
    /// Critical risk: fix now.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// The lowercase name used in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Severity::ALL.into_iter().find(|sev| sev.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| Error::Parse {
            source_name: "severity".into(),
            line: None,
            message: format!("unknown severity {s:?}; expected one of info, low, medium, high, critical"),
        })
    }
}

/// Stable metadata of one rule.
///
/// ```
/// use compliance_core::{Check, Severity};
/// let check = Check::new("k8s.pod.run_as_non_root", "Containers run as non-root", Severity::High, "Workload")?
///     .with_rationale("A process running as root inside a container is root on the node if it escapes.")
///     .with_remediation("Set securityContext.runAsNonRoot: true on the pod or every container.")
///     .with_reference("PSS restricted: Running as Non-root");
/// assert_eq!(check.id.as_str(), "k8s.pod.run_as_non_root");
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Check {
    /// Stable id.
    pub id: CheckId,
    /// One-line title.
    pub title: String,
    /// Why the rule matters.
    pub rationale: String,
    /// Severity of a failure.
    pub severity: Severity,
    /// The kind of resource it judges (`Workload`, `IAMUser`, `S3Bucket`, ...).
    pub resource_kind: String,
    /// How to fix a failure, for people (shared with every failing evidence).
    pub remediation: Arc<str>,
    /// Whether a built-in remediator can fix a failure.
    pub remediable: bool,
    /// Outside references: the standard control the rule implements
    /// (for example a Pod Security Standards control), a CIS item, a URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

impl Check {
    /// A check with the required fields; add the rest with the `with_*` methods.
    pub fn new(
        id: &str,
        title: impl Into<String>,
        severity: Severity,
        resource_kind: impl Into<String>,
    ) -> Result<Self, Error> {
        Ok(Self::from_id(CheckId::new(id)?, title, severity, resource_kind))
    }

    /// A check of an id already validated (a [`CheckId::derived`] one).
    pub fn from_id(
        id: CheckId,
        title: impl Into<String>,
        severity: Severity,
        resource_kind: impl Into<String>,
    ) -> Self {
        Self {
            id,
            title: title.into(),
            rationale: String::new(),
            severity,
            resource_kind: resource_kind.into(),
            remediation: Arc::from(""),
            remediable: false,
            references: Vec::new(),
        }
    }

    /// Sets the rationale.
    pub fn with_rationale(mut self, rationale: impl Into<String>) -> Self {
        self.rationale = rationale.into();
        self
    }

    /// Sets the remediation guidance.
    pub fn with_remediation(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = Arc::from(remediation.into());
        self
    }

    /// Marks the check as fixable by a built-in remediator.
    pub fn remediable(mut self) -> Self {
        self.remediable = true;
        self
    }

    /// Adds an outside reference.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.references.push(reference.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_follow_the_contract() {
        for ok in [
            "k8s.pod.run_as_non_root",
            "aws.iam.user_inactive",
            "aws.config.s3-bucket-ssl-requests-only",
            "k8s.pss.host_namespaces",
        ] {
            assert!(CheckId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "k8s", "K8s.pod", "k8s..pod", "k8s.pod.", "k8s.pod run", "k8s._pod"] {
            assert!(CheckId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_id_serde_validates() {
        let ok: Result<CheckId, _> = serde_json::from_str("\"aws.s3.versioning\"");
        assert!(ok.is_ok());
        let bad: Result<CheckId, _> = serde_json::from_str("\"AWS\"");
        assert!(bad.is_err());
    }

    #[test]
    fn severity_order_and_parse() {
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
        assert_eq!("CRITICAL".parse::<Severity>().ok(), Some(Severity::Critical));
        assert!("severe".parse::<Severity>().is_err());
        assert_eq!(serde_json::to_string(&Severity::Medium).ok().as_deref(), Some("\"medium\""));
    }
}

/// Check metadata as static data, for a provider's catalogue.
///
/// ```
/// use compliance_core::{CheckSpec, Severity};
/// const SPEC: CheckSpec = CheckSpec {
///     id: "demo.db.encrypted", title: "Databases are encrypted", severity: Severity::High, resource_kind: "Database",
///     rationale: "Stolen disks leak data.", remediation: "Turn on storage encryption.", reference: "", remediable: false,
/// };
/// let check = SPEC.to_check()?;
/// assert!(check.references.is_empty());
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// Id.
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Resource kind.
    pub resource_kind: &'static str,
    /// Rationale.
    pub rationale: &'static str,
    /// Remediation guidance.
    pub remediation: &'static str,
    /// One outside reference, or empty.
    pub reference: &'static str,
    /// Whether a built-in remediator fixes it.
    pub remediable: bool,
}

impl CheckSpec {
    /// The check, or an error when the id is malformed.
    pub fn to_check(&self) -> Result<Check, Error> {
        let mut check = Check::new(self.id, self.title, self.severity, self.resource_kind)?
            .with_rationale(self.rationale)
            .with_remediation(self.remediation);
        if !self.reference.is_empty() {
            check = check.with_reference(self.reference);
        }
        Ok(if self.remediable { check.remediable() } else { check })
    }
}
