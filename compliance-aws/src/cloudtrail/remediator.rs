//! Turns on log file validation on a trail: CloudTrail then delivers a signed
//! digest file every hour, so a changed or deleted log file is detected. It
//! only adds files to the log bucket, and turning it off again is one call,
//! which the record gives.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{
    Change, CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk, Scope, Status,
};
use serde_json::json;

use super::api::{SdkTrails, TrailApi};
use super::{TRAILS, Trail};
use crate::AccountGuard;

const NAME: &str = "aws-cloudtrail-log-file-validation";
const CHECK: &str = "aws.cloudtrail.log_file_validation";

/// Enables log file validation on the trail an evidence names (low risk:
/// it adds digest files and changes nothing else).
#[derive(Clone)]
pub struct LogFileValidationRemediator {
    api: Arc<dyn TrailApi>,
    account: AccountGuard,
}

impl LogFileValidationRemediator {
    /// Through the SDK; acts only on evidence of the credentials' account.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_api(Arc::new(SdkTrails::new(sdk))).with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`TrailApi`].
    pub fn with_api(api: Arc<dyn TrailApi>) -> Self {
        Self { api, account: AccountGuard::unchecked() }
    }

    /// Plans and applies only for evidence of this account.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }

    fn failure(reason: impl std::fmt::Display) -> Error {
        Error::remediation(NAME, reason.to_string())
    }

    /// The trail an evidence or plan names (its ARN is the resource id; its
    /// home region the resource's region), read now.
    async fn current(&self, resource: &compliance_core::ResourceRef) -> compliance_core::Result<Trail> {
        let region = resource.region.as_deref().ok_or_else(|| Self::failure("the evidence names no home region"))?;
        self.api
            .trail(&resource.id, region)
            .await
            .map_err(|e| Error::remediation_from(NAME, e.explain(), e))?
            .ok_or_else(|| Self::failure(format!("trail {} no longer exists", resource.id)))
    }
}

/// Refuses a trail another account owns: an organization trail shows in
/// every member account, but only the management account can change it.
fn owned_here(resource: &compliance_core::ResourceRef) -> compliance_core::Result<()> {
    // arn:aws:cloudtrail:<region>:<account>:trail/<name>
    let owner = resource.id.split(':').nth(4).filter(|a| !a.is_empty());
    match (owner, resource.account.as_deref()) {
        (Some(owner), Some(account)) if owner != account => Err(LogFileValidationRemediator::failure(format!(
            "trail {} belongs to account {owner} (an organization trail): only that account can change it",
            resource.name
        ))),
        _ => Ok(()),
    }
}

#[async_trait]
impl Remediator for LogFileValidationRemediator {
    fn name(&self) -> &str {
        NAME
    }

    fn fixes(&self) -> Vec<CheckId> {
        TRAILS.remediable()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || evidence.check_id.as_str() != CHECK {
            return Ok(None);
        }
        self.account.admit(NAME, &evidence.resource).await?;
        owned_here(&evidence.resource)?;
        let trail = self.current(&evidence.resource).await?;
        if trail.log_file_validation {
            return Ok(None);
        }
        let change = Change::new(
            "cloudtrail:UpdateTrail",
            format!("trail.{}.log_file_validation_enabled", trail.name),
            json!(false),
            json!(true),
        );
        let summary = format!("turn on log file validation on trail {}", trail.name);
        let payload = json!({ "arn": trail.arn, "home_region": trail.home_region, "enable_log_file_validation": true });
        Ok(Some(RemediationPlan::new(NAME, evidence, summary, vec![change], Risk::Low, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        self.account.admit(NAME, &plan.resource).await?;
        owned_here(&plan.resource)?;
        let trail = self.current(&plan.resource).await?;
        if trail.arn != plan.payload["arn"] || trail.home_region != plan.payload["home_region"] {
            return Err(Self::failure("the plan's payload names another trail than its resource: refused"));
        }
        if mode == Mode::DryRun {
            let message = if trail.log_file_validation {
                "dry run: log file validation is already on; nothing to change"
            } else {
                "dry run: cloudtrail:UpdateTrail --enable-log-file-validation would be called; nothing changed"
            };
            return Ok(RemediationOutcome::new(plan, mode, false, message)
                .with_record(json!({ "would_call": (!trail.log_file_validation).then_some("cloudtrail:UpdateTrail"), "request": plan.payload })));
        }
        let changed = !trail.log_file_validation;
        if changed {
            self.api
                .set_log_file_validation(&trail.arn, &trail.home_region, true)
                .await
                .map_err(|e| Error::remediation_from(NAME, e.explain(), e))?;
        }
        let read_back = self.current(&plan.resource).await?;
        let verification = TRAILS
            .judge(&read_back, &(), plan.resource.clone(), &Scope::only([CHECK]), Utc::now())
            .into_iter()
            .next()
            .ok_or_else(|| Self::failure(format!("{CHECK} gave no evidence after the change")))?;
        let message = if changed {
            format!("log file validation turned on for trail {}: now {}", trail.name, verification.status)
        } else {
            format!("log file validation was already on for trail {}", trail.name)
        };
        let restore = format!(
            "aws cloudtrail update-trail --region {} --name {} --no-enable-log-file-validation",
            trail.home_region, trail.arn
        );
        Ok(RemediationOutcome::new(plan, mode, changed, message)
            .with_record(json!({ "request": plan.payload, "changed": changed, "restore": restore }))
            .with_verification(verification))
    }
}

#[cfg(test)]
mod tests {
    use compliance_core::{Check, ResourceRef, Severity};

    use super::*;
    use crate::cloudtrail::api::MockTrailApi;

    fn failing(account: &str, arn: &str) -> compliance_core::Result<Evidence> {
        let check = Check::new(CHECK, "t", Severity::Medium, "AWS::CloudTrail::Trail")?;
        let trail = ResourceRef::new("aws", "AWS::CloudTrail::Trail", arn, "org")
            .with_account_region(Some(account.into()), Some("us-east-1".into()));
        Ok(Evidence::new(&check, trail, Status::Fail, "off"))
    }

    #[tokio::test]
    async fn an_organization_trail_of_another_account_and_evidence_of_another_account_are_refused()
    -> compliance_core::Result<()> {
        // No call may be made: the mock has no expectation.
        let remediator = LogFileValidationRemediator::with_api(Arc::new(MockTrailApi::new()))
            .with_account(AccountGuard::named("111111111111"));
        let org_trail = failing("111111111111", "arn:aws:cloudtrail:us-east-1:999999999999:trail/org")?;
        let refused = remediator.plan(&org_trail).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("belongs to account 999999999999"), "{refused}");
        let other = failing("222222222222", "arn:aws:cloudtrail:us-east-1:222222222222:trail/org")?;
        assert!(remediator.plan(&other).await.is_err(), "evidence of another account");
        Ok(())
    }

    #[tokio::test]
    async fn a_denied_update_fails_the_apply_naming_the_permission() -> compliance_core::Result<()> {
        let arn = "arn:aws:cloudtrail:us-east-1:111111111111:trail/org";
        let mut api = MockTrailApi::new();
        api.expect_trail().returning(|arn, region| {
            Ok(Some(Trail {
                name: "org".into(),
                arn: arn.into(),
                home_region: region.into(),
                multi_region: true,
                logging: Ok(true),
                log_file_validation: false,
                kms_key: None,
                bucket: None,
                bucket_block: Ok(None),
            }))
        });
        api.expect_set_log_file_validation().returning(|_, _, _| {
            Err(crate::api::ApiError::new("cloudtrail:UpdateTrail", Some("AccessDeniedException"), "no", Some(400)))
        });
        let remediator =
            LogFileValidationRemediator::with_api(Arc::new(api)).with_account(AccountGuard::named("111111111111"));
        let plan = remediator.plan(&failing("111111111111", arn)?).await?.ok_or(Error::remediation(NAME, "no plan"))?;
        assert_eq!(plan.risk, Risk::Low);
        let error = remediator.apply(&plan, Mode::Apply).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("cloudtrail:UpdateTrail"), "{error}");
        Ok(())
    }
}
