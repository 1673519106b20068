//! The one public error type of compliance-core.

use std::time::Duration;

/// Everything that can go wrong in compliance-core and in the providers built
/// on it. Providers map their private errors into one of these variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A check id that does not follow the `provider.area.rule` form.
    #[error("invalid check id {id:?}: {reason}")]
    InvalidCheckId {
        /// The rejected id.
        id: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A collector as a whole could not run (credentials, unreachable API, ...).
    #[error("collector {collector} failed: {reason}")]
    Collect {
        /// Name of the collector.
        collector: String,
        /// What went wrong, for people.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The credentials in use may not do what a collector or remediator
    /// needs: the run shows a `denied` gap naming the permission.
    #[error("collector {collector} failed: {reason}")]
    PermissionDenied {
        /// Name of the collector or remediator.
        collector: String,
        /// What was refused, for people.
        reason: String,
        /// The permission or API call that was refused (`s3:ListAllMyBuckets`, `list pods`).
        permission: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A configuration value is wrong: the field, as a path, and why.
    #[error("{field}: {message}")]
    Config {
        /// The field (`k8s.manifests[0]`, `aws.region`).
        field: String,
        /// What is wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A collector did not finish within its time limit.
    #[error("collector {collector} timed out after {timeout:?}")]
    Timeout {
        /// Name of the collector.
        collector: String,
        /// The limit it exceeded.
        timeout: Duration,
    },
    /// The run was cancelled before the collector finished.
    #[error("collector {collector} was cancelled")]
    Cancelled {
        /// Name of the collector.
        collector: String,
    },
    /// Input (a file, a document, a field) could not be read.
    #[error("{source_name}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file or stream, as the user named it.
        source_name: String,
        /// 1-based line, where known.
        line: Option<usize>,
        /// What is wrong, naming the field where known.
        message: String,
    },
    /// A remediation could not be planned or applied.
    #[error("remediation by {remediator} failed: {reason}")]
    Remediation {
        /// Name of the remediator.
        remediator: String,
        /// What went wrong.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A plan whose risk needs approval was not approved.
    #[error("plan {plan_id} was not approved: {reason}")]
    NotApproved {
        /// The plan.
        plan_id: String,
        /// The approver's reason.
        reason: String,
    },
    /// The operation is not supported by this implementation.
    #[error("{operation} is not supported by {implementer}")]
    Unsupported {
        /// What was asked for.
        operation: String,
        /// Who cannot do it.
        implementer: String,
    },
    /// An implementation broke a rule of the conformance suite.
    #[error("conformance rule broken: {rule}: {detail}")]
    Conformance {
        /// The rule.
        rule: String,
        /// Where and how.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Any error, kept as the source of one of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// A collector that could not run, with no underlying error to keep.
    pub fn collect(collector: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Collect { collector: collector.into(), reason: reason.into(), source: None }
    }

    /// A collector that could not run because of `source`.
    pub fn collect_from(collector: impl Into<String>, reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Collect { collector: collector.into(), reason: reason.into(), source: Some(source.into()) }
    }

    /// A remediation that could not be planned or applied.
    pub fn remediation(remediator: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Remediation { remediator: remediator.into(), reason: reason.into(), source: None }
    }

    /// A remediation that could not be planned or applied because of `source`.
    pub fn remediation_from(
        remediator: impl Into<String>,
        reason: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Remediation { remediator: remediator.into(), reason: reason.into(), source: Some(source.into()) }
    }

    /// True when permission was denied.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied { .. })
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
