//! [`AccountPublicAccessBlockCollector`]: one evidence for the account.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{Check, Collection, Collector, ResourceRef, Scope};

use super::api::{AccountBlockApi, SdkAccountBlock};
use super::{CATALOGUE, KIND};
use crate::AccountGuard;

/// The resource the evidence is about: the account's S3 settings.
pub(crate) fn account_resource(account: Option<&str>) -> ResourceRef {
    let id = format!("arn:aws:s3::{}:account", account.unwrap_or("unknown"));
    ResourceRef::new("aws", KIND, id, "<account public access block>")
        .with_account_region(account.map(str::to_owned), None)
}

/// Reads the account's public access block and judges it.
#[derive(Clone)]
pub struct AccountPublicAccessBlockCollector {
    api: Arc<dyn AccountBlockApi>,
    account: AccountGuard,
}

impl AccountPublicAccessBlockCollector {
    /// Through the SDK, for the credentials' account.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_api(Arc::new(SdkAccountBlock::new(sdk)), AccountGuard::of_credentials(sdk))
    }

    /// Through any [`AccountBlockApi`], for the account `account` names
    /// (S3 Control needs the account id in every call).
    pub fn with_api(api: Arc<dyn AccountBlockApi>, account: AccountGuard) -> Self {
        Self { api, account }
    }
}

#[async_trait]
impl Collector for AccountPublicAccessBlockCollector {
    fn name(&self) -> &str {
        "aws-s3-account"
    }

    fn checks(&self) -> Vec<Check> {
        CATALOGUE.checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        if !CATALOGUE.any_wanted(scope) {
            return Ok(Collection::default());
        }
        let now = Utc::now();
        let account = match self.account.account().await {
            Ok(Some(account)) => account,
            // Without the account id there is nothing to ask S3 Control: error evidence, never a pass.
            Ok(None) => {
                let reason = "the account is not known, and S3 Control needs it";
                return Ok(CATALOGUE.unreadable(account_resource(None), reason, scope, now, |_| true).into());
            }
            Err(e) => {
                return Ok(CATALOGUE.unreadable(account_resource(None), &e.explain(), scope, now, |_| true).into());
            }
        };
        let resource = account_resource(Some(&account));
        let evidence = match self.api.get(&account).await {
            Ok(block) => CATALOGUE.judge(&block, &(), resource, scope, now),
            Err(e) => CATALOGUE.unreadable(resource, &e.explain(), scope, now, |_| true),
        };
        Ok(evidence.into())
    }
}

#[cfg(test)]
mod tests {
    use compliance_core::Status;

    use super::*;
    use crate::api::ApiError;
    use crate::s3::account::MockAccountBlockApi;

    #[tokio::test]
    async fn a_denied_read_is_error_evidence_naming_the_permission() -> compliance_core::Result<()> {
        let mut api = MockAccountBlockApi::new();
        api.expect_get()
            .returning(|_| Err(ApiError::new("s3:GetAccountPublicAccessBlock", Some("AccessDenied"), "no", Some(403))));
        let collector = AccountPublicAccessBlockCollector::with_api(Arc::new(api), AccountGuard::named("111122223333"));
        let c = collector.collect(&Scope::all()).await?;
        assert_eq!(c.evidence.len(), 1);
        assert_eq!(c.evidence[0].status, Status::Error);
        assert_eq!(c.evidence[0].resource.account.as_deref(), Some("111122223333"));
        assert!(c.evidence[0].message.contains("s3:GetAccountPublicAccessBlock"), "{}", c.evidence[0].message);
        Ok(())
    }

    #[tokio::test]
    async fn without_the_account_id_the_check_is_an_error_not_a_pass() -> compliance_core::Result<()> {
        // No call is made: the mock has no expectation.
        let collector = AccountPublicAccessBlockCollector::with_api(
            Arc::new(MockAccountBlockApi::new()),
            AccountGuard::unchecked(),
        );
        let c = collector.collect(&Scope::all()).await?;
        assert_eq!(c.evidence.len(), 1);
        assert_eq!(c.evidence[0].status, Status::Error);
        assert!(c.evidence[0].message.contains("S3 Control needs it"), "{}", c.evidence[0].message);
        Ok(())
    }
}
