//! Which AWS account a remediator acts on, so that a plan made from one
//! account's evidence is never applied with another account's credentials.

use std::sync::Arc;

use compliance_core::{Error, ResourceRef};
use tokio::sync::OnceCell;

use crate::api::ApiError;

/// The account a remediator's credentials belong to.
///
/// Built from an SDK configuration, it is learned once with STS
/// `GetCallerIdentity` (which needs no permission). A remediator then
/// refuses evidence that names another account, or none.
#[derive(Clone, Debug)]
pub struct AccountGuard(Arc<Source>);

#[derive(Debug)]
enum Source {
    /// Nothing is compared (a remediator built on an API of the caller's own).
    Unchecked,
    /// A known account.
    Named(String),
    /// The credentials' own account, learned at the first use.
    Caller { sts: aws_sdk_sts::Client, account: OnceCell<String> },
}

impl AccountGuard {
    /// Compares nothing: for remediators built on an API of the caller's
    /// own, which knows its account better than we do.
    pub fn unchecked() -> Self {
        Self(Arc::new(Source::Unchecked))
    }

    /// Evidence must name this account.
    pub fn named(account: impl Into<String>) -> Self {
        Self(Arc::new(Source::Named(account.into())))
    }

    /// Evidence must name the account of these credentials, learned with
    /// STS `GetCallerIdentity` at the first plan or apply.
    pub fn of_credentials(sdk: &aws_config::SdkConfig) -> Self {
        Self(Arc::new(Source::Caller { sts: aws_sdk_sts::Client::new(sdk), account: OnceCell::new() }))
    }

    /// The account, when it is known or can be learned.
    pub async fn account(&self) -> Result<Option<String>, ApiError> {
        match self.0.as_ref() {
            Source::Unchecked => Ok(None),
            Source::Named(account) => Ok(Some(account.clone())),
            Source::Caller { sts, account } => account
                .get_or_try_init(|| async {
                    let identity = sts
                        .get_caller_identity()
                        .send()
                        .await
                        .map_err(|e| ApiError::from_sdk("sts:GetCallerIdentity", e))?;
                    identity.account.ok_or_else(|| {
                        ApiError::new("sts:GetCallerIdentity", None, "the answer names no account", None)
                    })
                })
                .await
                .map(|a| Some(a.clone())),
        }
    }

    /// `Ok` when `resource` is in this account; a refusal naming both
    /// accounts otherwise.
    pub async fn admit(&self, component: &str, resource: &ResourceRef) -> compliance_core::Result<()> {
        let mine = match self.account().await {
            Ok(Some(mine)) => mine,
            Ok(None) => return Ok(()),
            Err(e) => {
                let reason = format!("cannot learn which AWS account these credentials are for: {}", e.explain());
                return Err(Error::remediation_from(component, reason, e));
            }
        };
        match resource.account.as_deref() {
            Some(theirs) if theirs == mine => Ok(()),
            theirs => Err(Error::remediation(
                component,
                format!(
                    "{} is in AWS account {}, but these credentials are for account {mine}: refused",
                    resource.id,
                    theirs.unwrap_or("(none named; scan again to record it)")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(account: Option<&str>) -> ResourceRef {
        ResourceRef::new("aws", "S3Bucket", "arn:aws:s3:::b", "b").with_account_region(account.map(str::to_owned), None)
    }

    #[tokio::test]
    async fn a_named_account_admits_its_own_evidence_only() {
        let guard = AccountGuard::named("123456789012");
        assert!(guard.admit("aws-s3", &bucket(Some("123456789012"))).await.is_ok());
        let other = guard.admit("aws-s3", &bucket(Some("111122223333"))).await.err().map(|e| e.to_string());
        assert!(other.is_some_and(|e| {
            e.contains("is in AWS account 111122223333, but these credentials are for account 123456789012")
        }));
        let none = guard.admit("aws-s3", &bucket(None)).await.err().map(|e| e.to_string());
        assert!(none.is_some_and(|e| e.contains("none named")));
        assert!(AccountGuard::unchecked().admit("aws-s3", &bucket(None)).await.is_ok());
    }
}
