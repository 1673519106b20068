//! What every AWS call can go wrong with, independent of the SDK crate.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS API error, reduced to what decisions need: the operation (as the
/// IAM permission it needs), the AWS error code, the message, the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct ApiError {
    /// The operation, named as the IAM permission it needs (`s3:GetBucketPolicy`).
    pub operation: &'static str,
    /// The AWS error code (`NoSuchBucketPolicy`, `AccessDenied`), when there is one.
    pub code: Option<String>,
    /// The message.
    pub message: String,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
}

impl ApiError {
    /// An error with a code, for tests and facades.
    pub fn new(operation: &'static str, code: Option<&str>, message: impl Into<String>, status: Option<u16>) -> Self {
        Self { operation, code: code.map(str::to_owned), message: message.into(), status }
    }

    /// Maps any SDK error. Unmodelled service errors (`NoSuchBucketPolicy`,
    /// ...) keep their code, which is how they are told apart.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, Response>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        let message = match err.message() {
            Some(m) => m.to_owned(),
            None => match &err {
                SdkError::TimeoutError(_) => "timed out".to_owned(),
                // Credentials that cannot be loaded, DNS, TLS: the causes say which.
                other => causes(other),
            },
        };
        Self { operation, code, message, status }
    }

    /// True when the code is `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when permission was denied.
    pub fn is_denied(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "Forbidden")
        ) || (self.code.is_none() && self.status == Some(403))
    }

    /// A sentence for an `error` evidence: for a denied call, the permission
    /// the scanner needs.
    pub fn explain(&self) -> String {
        if self.is_denied() {
            format!("access denied: the scanner needs the {} permission ({})", self.operation, self.message)
        } else {
            self.to_string()
        }
    }
}

impl ApiError {
    /// The error of a collector that could not run because of this call: a
    /// denied call is [`Error::PermissionDenied`](compliance_core::Error::PermissionDenied)
    /// naming the permission; the call's error is kept as the source.
    pub fn into_collect_error(self, collector: &str) -> compliance_core::Error {
        let reason = self.explain();
        if self.is_denied() {
            compliance_core::Error::PermissionDenied {
                collector: collector.to_owned(),
                reason,
                permission: self.operation.to_owned(),
                source: Some(Box::new(self)),
            }
        } else {
            compliance_core::Error::collect_from(collector, reason, self)
        }
    }
}

/// An error and its causes, each once: `a: b: c`.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The AWS account of an ARN (`arn:aws:iam::123456789012:user/alice`).
#[cfg_attr(not(feature = "iam"), allow(dead_code))]
pub(crate) fn account_of(arn: &str) -> Option<String> {
    arn.split(':').nth(4).filter(|a| !a.is_empty()).map(str::to_owned)
}

/// An SDK time as a `chrono` one (every SDK facade reads times this way).
#[cfg_attr(not(any(feature = "iam", feature = "config")), allow(dead_code))]
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_is_recognised_and_explained() {
        let e = ApiError::new("s3:GetBucketPolicy", Some("AccessDenied"), "Access Denied", Some(403));
        assert!(e.is_denied());
        assert_eq!(e.explain(), "access denied: the scanner needs the s3:GetBucketPolicy permission (Access Denied)");
        assert!(ApiError::new("iam:GetUser", None, "", Some(403)).is_denied());
        assert!(!ApiError::new("s3:GetBucketPolicy", Some("NoSuchBucketPolicy"), "none", Some(404)).is_denied());
        assert_eq!(account_of("arn:aws:iam::123456789012:user/alice").as_deref(), Some("123456789012"));
        assert_eq!(account_of("arn:aws:s3:::bucket"), None);
    }
}
