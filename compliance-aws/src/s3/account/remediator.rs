//! Turns on the account's public access block. High risk: a bucket that
//! serves public content on purpose (a static site, public datasets) stops
//! serving it, so the plan needs approval and says so. The record gives
//! the previous settings and the command that restores them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{
    Change, CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk, Scope, Status,
};
use serde_json::json;

use super::api::{AccountBlockApi, SdkAccountBlock};
use super::collector::account_resource;
use super::{CATALOGUE, CHECK};
use crate::AccountGuard;
use crate::s3::PublicAccessBlock;

const NAME: &str = "aws-s3-account-public-access-block";

/// Sets all four account-level public access block settings, with approval.
#[derive(Clone)]
pub struct AccountPublicAccessBlockRemediator {
    api: Arc<dyn AccountBlockApi>,
    account: AccountGuard,
}

impl AccountPublicAccessBlockRemediator {
    /// Through the SDK; acts only on evidence of the credentials' account.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_api(Arc::new(SdkAccountBlock::new(sdk)), AccountGuard::of_credentials(sdk))
    }

    /// Through any [`AccountBlockApi`], for evidence of the account `account` names.
    pub fn with_api(api: Arc<dyn AccountBlockApi>, account: AccountGuard) -> Self {
        Self { api, account }
    }

    fn failure(reason: impl std::fmt::Display) -> Error {
        Error::remediation(NAME, reason.to_string())
    }

    async fn current(&self, account: &str) -> compliance_core::Result<Option<PublicAccessBlock>> {
        self.api.get(account).await.map_err(|e| Error::remediation_from(NAME, e.explain(), e))
    }

    /// The account of an evidence or plan: the one it names, which the guard admitted.
    fn account_of(resource: &compliance_core::ResourceRef) -> compliance_core::Result<String> {
        resource.account.clone().ok_or_else(|| Self::failure("the evidence names no account"))
    }
}

fn changes(before: &Option<PublicAccessBlock>) -> Vec<Change> {
    let old = before.unwrap_or_default();
    [
        ("block_public_acls", old.block_public_acls),
        ("ignore_public_acls", old.ignore_public_acls),
        ("block_public_policy", old.block_public_policy),
        ("restrict_public_buckets", old.restrict_public_buckets),
    ]
    .into_iter()
    .filter(|(_, on)| !on)
    .map(|(field, _)| {
        Change::new(
            "s3:PutAccountPublicAccessBlock",
            format!("account.public_access_block.{field}"),
            json!(false),
            json!(true),
        )
    })
    .collect()
}

#[async_trait]
impl Remediator for AccountPublicAccessBlockRemediator {
    fn name(&self) -> &str {
        NAME
    }

    fn fixes(&self) -> Vec<CheckId> {
        CATALOGUE.remediable()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || evidence.check_id.as_str() != CHECK {
            return Ok(None);
        }
        self.account.admit(NAME, &evidence.resource).await?;
        let account = Self::account_of(&evidence.resource)?;
        let before = self.current(&account).await?;
        let changes = changes(&before);
        if changes.is_empty() {
            return Ok(None);
        }
        let summary = format!(
            "block public access for every bucket of account {account}: buckets that serve public content on purpose stop serving it"
        );
        let payload = json!({ "account": account, "before": before, "after": PublicAccessBlock::ALL_ON });
        Ok(Some(RemediationPlan::new(NAME, evidence, summary, changes, Risk::High, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        self.account.admit(NAME, &plan.resource).await?;
        let account = Self::account_of(&plan.resource)?;
        if plan.payload["account"] != account.as_str() {
            return Err(Self::failure("the plan's payload names another account than its resource: refused"));
        }
        let now = self.current(&account).await?;
        // Only over the settings the plan was made from: a change in between needs a new plan.
        if json!(now) != plan.payload["before"] {
            return Err(Self::failure(
                "the account's public access block changed since the plan was made: make a new plan",
            ));
        }
        if mode == Mode::DryRun {
            return Ok(RemediationOutcome::new(
                plan,
                mode,
                false,
                "dry run: s3:PutAccountPublicAccessBlock would set all four settings; nothing changed",
            )
            .with_record(json!({ "would_set": PublicAccessBlock::ALL_ON })));
        }
        self.api
            .put(&account, PublicAccessBlock::ALL_ON)
            .await
            .map_err(|e| Error::remediation_from(NAME, e.explain(), e))?;
        let read_back = self.current(&account).await?;
        let verification = CATALOGUE
            .judge(&read_back, &(), account_resource(Some(&account)), &Scope::only([CHECK]), Utc::now())
            .into_iter()
            .next()
            .ok_or_else(|| Self::failure(format!("{CHECK} gave no evidence after the change")))?;
        let restore = match now {
            Some(b) => format!(
                "aws s3control put-public-access-block --account-id {account} --public-access-block-configuration BlockPublicAcls={},IgnorePublicAcls={},BlockPublicPolicy={},RestrictPublicBuckets={}",
                b.block_public_acls, b.ignore_public_acls, b.block_public_policy, b.restrict_public_buckets
            ),
            None => format!("aws s3control delete-public-access-block --account-id {account}"),
        };
        let message = format!("account public access block set: {}", verification.message);
        Ok(RemediationOutcome::new(plan, mode, true, message)
            .with_record(json!({ "previous": now, "set": PublicAccessBlock::ALL_ON, "restore": restore }))
            .with_verification(verification))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_settings_that_are_off_change() {
        let partial = PublicAccessBlock { block_public_acls: false, ..PublicAccessBlock::ALL_ON };
        let targets: Vec<String> = changes(&Some(partial)).into_iter().map(|c| c.target).collect();
        assert_eq!(targets, ["account.public_access_block.block_public_acls"]);
        assert_eq!(changes(&None).len(), 4);
        assert!(changes(&Some(PublicAccessBlock::ALL_ON)).is_empty());
    }

    #[tokio::test]
    async fn evidence_of_another_account_is_refused_and_a_denied_put_fails_naming_the_permission()
    -> compliance_core::Result<()> {
        use compliance_core::{Check, Severity};

        let check = Check::new(CHECK, "t", Severity::High, super::super::KIND)?;
        let evidence = |account: &str| Evidence::new(&check, account_resource(Some(account)), Status::Fail, "off");
        let mut api = crate::s3::account::MockAccountBlockApi::new();
        api.expect_get().returning(|_| Ok(None));
        api.expect_put().returning(|_, _| {
            Err(crate::api::ApiError::new("s3:PutAccountPublicAccessBlock", Some("AccessDenied"), "no", Some(403)))
        });
        let remediator =
            AccountPublicAccessBlockRemediator::with_api(Arc::new(api), AccountGuard::named("111111111111"));
        assert!(remediator.plan(&evidence("222222222222")).await.is_err(), "another account");
        let plan = remediator.plan(&evidence("111111111111")).await?.ok_or(Error::remediation(NAME, "no plan"))?;
        assert_eq!((plan.risk, plan.changes.len()), (Risk::High, 4));
        let error = remediator.apply(&plan, Mode::Apply).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("s3:PutAccountPublicAccessBlock"), "{error}");
        Ok(())
    }
}
