//! Fixes the account's password policy: what PCI DSS v4.0 8.3.6 asks is
//! added (length, numbers, letters) and every other setting kept. It only
//! affects passwords set from then on, and the record says how to restore
//! the previous policy.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{
    Change, CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk, Status,
};
use serde_json::{Value, json};

use super::PostureConfig;
use super::checks::password_catalogue;
use super::collector::{PostureApi, SdkPosture};
use super::model::PasswordPolicy;
use crate::AccountGuard;

const NAME: &str = "aws-iam-password-policy";

/// Strengthens the account password policy, with approval (medium risk).
#[derive(Clone)]
pub struct PasswordPolicyRemediator {
    api: Arc<dyn PostureApi>,
    config: PostureConfig,
    account: AccountGuard,
}

impl PasswordPolicyRemediator {
    /// Through the SDK; acts only on evidence of the credentials' account.
    pub fn new(sdk: &aws_config::SdkConfig, config: PostureConfig) -> Self {
        Self::with_api(Arc::new(SdkPosture::new(sdk)), config).with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`PostureApi`].
    pub fn with_api(api: Arc<dyn PostureApi>, config: PostureConfig) -> Self {
        Self { api, config, account: AccountGuard::unchecked() }
    }

    /// Plans and applies only for evidence of this account.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }

    fn failure(reason: impl std::fmt::Display) -> Error {
        Error::remediation(NAME, reason.to_string())
    }

    async fn current(&self) -> compliance_core::Result<Option<PasswordPolicy>> {
        self.api.password_policy().await.map_err(|e| Error::remediation_from(NAME, e.explain(), e))
    }
}

/// The fields that differ, as changes.
fn changes(before: &Option<PasswordPolicy>, after: &PasswordPolicy) -> Vec<Change> {
    let old = before.as_ref().map(|p| json!(p)).unwrap_or(Value::Null);
    let new = json!(after);
    let Some(fields) = new.as_object() else { return Vec::new() };
    fields
        .iter()
        .filter(|(field, value)| old.get(field.as_str()) != Some(*value))
        .map(|(field, value)| {
            Change::new(
                "iam:UpdateAccountPasswordPolicy",
                format!("account.password_policy.{field}"),
                old.get(field.as_str()).cloned().unwrap_or(Value::Null),
                value.clone(),
            )
        })
        .collect()
}

#[async_trait]
impl Remediator for PasswordPolicyRemediator {
    fn name(&self) -> &str {
        NAME
    }

    fn fixes(&self) -> Vec<CheckId> {
        password_catalogue().remediable()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || !self.fixes().contains(&evidence.check_id) {
            return Ok(None);
        }
        self.account.admit(NAME, &evidence.resource).await?;
        let before = self.current().await?;
        let after = before.clone().unwrap_or_default().strengthened(self.config.min_password_length);
        let changes = changes(&before, &after);
        if changes.is_empty() {
            return Ok(None);
        }
        let summary =
            format!("set the account password policy to at least {} characters, numbers and letters", after.min_length);
        let payload = json!({ "before": before, "after": after });
        Ok(Some(RemediationPlan::new(NAME, evidence, summary, changes, Risk::Medium, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        self.account.admit(NAME, &plan.resource).await?;
        let after: PasswordPolicy = serde_json::from_value(plan.payload["after"].clone())
            .map_err(|e| Self::failure(format!("the plan's payload: {e}")))?;
        let now = self.current().await?;
        // Only over the policy the plan was made from: another change in between needs a new plan.
        if json!(now) != plan.payload["before"] {
            return Err(Self::failure("the password policy changed since the plan was made: make a new plan"));
        }
        if changes(&now, &after) != plan.changes {
            return Err(Self::failure("the plan's changes and payload disagree: refused"));
        }
        if mode == Mode::DryRun {
            return Ok(RemediationOutcome::new(
                plan,
                mode,
                false,
                "dry run: the password policy would be set; nothing changed",
            )
            .with_record(json!({ "would_set": after })));
        }
        self.api.set_password_policy(&after).await.map_err(|e| Error::remediation_from(NAME, e.explain(), e))?;
        let read_back = self.current().await?;
        let Some(entry) = password_catalogue().entries().first() else {
            return Err(Self::failure("no password policy check"));
        };
        let verification = password_catalogue()
            .judge(&read_back, &self.config, plan.resource.clone(), &compliance_core::Scope::all(), Utc::now())
            .into_iter()
            .next()
            .ok_or_else(|| Self::failure(format!("{} gave no evidence after the change", entry.check().id)))?;
        let restore = match &now {
            Some(p) => format!(
                "aws iam update-account-password-policy --minimum-password-length {}{}{}{}{}",
                p.min_length,
                if p.numbers { " --require-numbers" } else { " --no-require-numbers" },
                if p.uppercase { " --require-uppercase-characters" } else { " --no-require-uppercase-characters" },
                if p.lowercase { " --require-lowercase-characters" } else { " --no-require-lowercase-characters" },
                if p.symbols { " --require-symbols" } else { " --no-require-symbols" },
            ),
            None => "aws iam delete-account-password-policy".to_owned(),
        };
        let message = format!("password policy set: {}", verification.message);
        Ok(RemediationOutcome::new(plan, mode, true, message)
            .with_record(json!({ "previous": now, "set": after, "restore": restore }))
            .with_verification(verification))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strengthening_adds_what_is_missing_and_keeps_the_rest() {
        let weak = PasswordPolicy {
            min_length: 8,
            uppercase: true,
            reuse_prevention: Some(5),
            max_age_days: Some(90),
            ..PasswordPolicy::default()
        };
        let strong = weak.strengthened(12);
        assert_eq!((strong.min_length, strong.numbers, strong.uppercase, strong.lowercase), (12, true, true, false));
        assert_eq!((strong.reuse_prevention, strong.max_age_days), (Some(5), Some(90)), "other settings kept");
        let fields: Vec<String> = changes(&Some(weak), &strong).iter().map(|c| c.target.clone()).collect();
        assert_eq!(fields, ["account.password_policy.min_length", "account.password_policy.numbers"]);
    }
}
