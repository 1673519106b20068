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
