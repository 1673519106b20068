//! The IAM remediator: disables an inactive user, with approval.

use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::{
    Change, CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk, Status,
};
use serde_json::json;
use tracing::info;

use super::api::{IamApi, SdkIam};
use super::checks::catalogue;
use crate::AccountGuard;

/// Disables an inactive user: deletes the login profile and deactivates the
/// access keys. High risk (it locks a person or a system out), so the engine
/// asks the [`Approver`](compliance_core::Approver); the outcome records what
/// was disabled, so that it can be restored.
#[derive(Clone)]
pub struct IamRemediator {
    api: Arc<dyn IamApi>,
    account: AccountGuard,
}

impl IamRemediator {
    /// A remediator through the SDK. It acts only on evidence of the
    /// credentials' own account (learned with STS `GetCallerIdentity`).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_api(Arc::new(SdkIam::new(sdk))).with_account(AccountGuard::of_credentials(sdk))
    }

    /// A remediator through any [`IamApi`]. It compares no account until
    /// [`with_account`](Self::with_account) names one.
    pub fn with_api(api: Arc<dyn IamApi>) -> Self {
        Self { api, account: AccountGuard::unchecked() }
    }

    /// Plans and applies only for evidence of this account; any other is
    /// refused.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }

    fn failure(&self, e: impl std::fmt::Display) -> Error {
        Error::remediation("aws-iam", e.to_string())
    }

    /// A failed call, kept as the source.
    fn call_failed(&self, e: crate::api::ApiError) -> Error {
        Error::remediation_from("aws-iam", e.explain(), e)
    }

    async fn state(&self, user: &str) -> compliance_core::Result<(bool, Vec<(String, bool)>)> {
        let login = self.api.has_login_profile(user).await.map_err(|e| self.call_failed(e))?;
        let keys = self.api.access_keys(user).await.map_err(|e| self.call_failed(e))?;
        Ok((login, keys))
    }
}

/// The one IAM fix: disabling the user fixes an inactive user. The
/// catalogue's `remediable` flags must name exactly the checks this fixes (a
/// test asserts it), since `fixes()` is read from the catalogue.
pub(super) fn disables_the_user(check: &CheckId) -> bool {
    check.as_str() == "aws.iam.user_inactive"
}

#[async_trait]
impl Remediator for IamRemediator {
    fn name(&self) -> &str {
        "aws-iam"
    }

    fn fixes(&self) -> Vec<CheckId> {
        catalogue().remediable()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || !disables_the_user(&evidence.check_id) {
            return Ok(None);
        }
        self.account.admit(self.name(), &evidence.resource).await?;
        let user = &evidence.resource.name;
        let (login, keys) = self.state(user).await?;
        let mut changes = Vec::new();
        if login {
            changes.push(Change::new(
                format!("iam:DeleteLoginProfile --user-name {user}"),
                format!("{user}.login_profile"),
                json!("enabled"),
                json!("deleted"),
            ));
        }
        let active: Vec<&String> = keys.iter().filter(|(_, a)| *a).map(|(id, _)| id).collect();
        for id in &active {
            changes.push(Change::new(
                format!("iam:UpdateAccessKey --user-name {user} --access-key-id {id} --status Inactive"),
                format!("{user}.access_keys.{id}.status"),
                json!("Active"),
                json!("Inactive"),
            ));
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let payload = json!({ "user": user, "delete_login_profile": login, "deactivate_access_keys": active });
        let summary = format!("disable IAM user {user}: {} change(s)", changes.len());
        Ok(Some(RemediationPlan::new(self.name(), evidence, summary, changes, Risk::High, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        self.account.admit(self.name(), &plan.resource).await?;
        let user = plan.resource.name.clone();
        // Only what the plan names, and only if it still holds: a key used
        // since the plan was made means the user is not inactive any more.
        let planned_login = plan.payload["delete_login_profile"].as_bool().unwrap_or(false);
        let planned_keys: Vec<String> = plan.payload["deactivate_access_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        if plan.payload["user"].as_str() != Some(user.as_str()) {
            return Err(self.failure(format!("the plan's payload names another user than {user}: refused")));
        }
        for key in &planned_keys {
            let used = self.api.access_key_last_used(key).await.map_err(|e| self.call_failed(e))?;
            if let Some(at) = used.filter(|at| *at > plan.created_at) {
                return Err(self.failure(format!(
                    "access key {key} of {user} was used at {at}, after the plan was made: the user is active; make a new plan"
                )));
            }
        }
        let (login_now, keys) = self.state(&user).await?;
        let login = planned_login && login_now;
        let active: Vec<String> =
            keys.iter().filter(|(id, a)| *a && planned_keys.contains(id)).map(|(id, _)| id.clone()).collect();
        let unplanned: Vec<&String> =
            keys.iter().filter(|(id, a)| *a && !planned_keys.contains(id)).map(|(id, _)| id).collect();
        if mode == Mode::DryRun {
            let record = json!({ "would_delete_login_profile": login, "would_deactivate_access_keys": active,
                                 "left_alone_not_in_plan": unplanned });
            return Ok(RemediationOutcome::new(
                plan,
                mode,
                false,
                format!("dry run: user {user} would be disabled; nothing changed"),
            )
            .with_record(record));
        }
        if !unplanned.is_empty() {
            // A key made after the plan is someone's new credential: never touched without a new plan.
            return Err(self.failure(format!(
                "{user} has active key(s) the plan does not name ({}): make a new plan",
                unplanned.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        if login {
            self.api.delete_login_profile(&user).await.map_err(|e| self.call_failed(e))?;
        }
        for id in &active {
            self.api.set_access_key_active(&user, id, false).await.map_err(|e| self.call_failed(e))?;
        }
        let (login_after, keys_after) = self.state(&user).await?;
        let still_active: Vec<&String> = keys_after.iter().filter(|(_, a)| *a).map(|(id, _)| id).collect();
        let Some(entry) = catalogue().get(&plan.check_id) else {
            return Err(self.failure(format!("{} is not an IAM check", plan.check_id)));
        };
        let check = entry.check();
        let status = if !login_after && still_active.is_empty() { Status::Pass } else { Status::Fail };
        let verification = Evidence::new(
            check,
            plan.resource.clone(),
            status,
            format!(
                "after remediation: login profile {}, {} active key(s)",
                if login_after { "present" } else { "absent" },
                still_active.len()
            ),
        )
        .with_details(json!({ "login_profile": login_after, "active_access_keys": still_active }));
        let record = json!({
            "disabled": { "login_profile_deleted": login, "access_keys_deactivated": active },
            "restore": {
                "access_keys": active.iter().map(|id| format!("aws iam update-access-key --user-name {user} --access-key-id {id} --status Active")).collect::<Vec<_>>(),
                "login_profile": if login { format!("aws iam create-login-profile --user-name {user} --password-reset-required (a new password: the old one cannot be restored)") } else { String::new() },
            }
        });
        info!(user, login_deleted = login, keys = active.len(), "IAM user disabled");
        Ok(RemediationOutcome::new(plan, mode, true, format!("disabled IAM user {user}"))
            .with_record(record)
            .with_verification(verification))
    }
}
