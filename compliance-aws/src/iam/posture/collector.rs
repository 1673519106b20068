//! The posture reads: `GetAccountAuthorizationDetails` (every page) and
//! `GetAccountPasswordPolicy`, and the collector that judges them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{Check, Collection, Collector, ResourceRef, Scope};
use tracing::info;

use super::PostureConfig;
use super::checks::{PostureContext, password_catalogue, principal_catalogue};
use super::model::{AuthorizationDetails, PasswordPolicy, Principal, PrincipalKind, decode_document};
use crate::AccountGuard;
use crate::api::{ApiError, account_of, to_chrono};

/// The IAM calls the posture checks make.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait PostureApi: Send + Sync {
    /// `iam:GetAccountAuthorizationDetails`, every page.
    async fn authorization_details(&self) -> Result<AuthorizationDetails, ApiError>;
    /// `iam:GetAccountPasswordPolicy`; `None` when the account has none.
    async fn password_policy(&self) -> Result<Option<PasswordPolicy>, ApiError>;
    /// `iam:UpdateAccountPasswordPolicy`, every field set.
    async fn set_password_policy(&self, policy: &PasswordPolicy) -> Result<(), ApiError>;
}

/// [`PostureApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkPosture {
    client: aws_sdk_iam::Client,
}

impl SdkPosture {
    /// From an SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_iam::Client::new(sdk) }
    }
}

fn inline<'a>(
    policies: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, serde_json::Value> {
    policies.filter_map(|(name, doc)| Some((name?.to_owned(), decode_document(doc.unwrap_or_default())))).collect()
}

#[async_trait]
impl PostureApi for SdkPosture {
    async fn authorization_details(&self) -> Result<AuthorizationDetails, ApiError> {
        let mut details = AuthorizationDetails::default();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .get_account_authorization_details()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("iam:GetAccountAuthorizationDetails", e))?;
            let attached = |list: &[aws_sdk_iam::types::AttachedPolicy]| {
                list.iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect::<Vec<_>>()
            };
            for u in out.user_detail_list() {
                details.principals.push(Principal {
                    kind: PrincipalKind::User,
                    name: u.user_name().unwrap_or_default().to_owned(),
                    arn: u.arn().unwrap_or_default().to_owned(),
                    path: u.path().unwrap_or_default().to_owned(),
                    created: u.create_date().and_then(to_chrono),
                    attached: attached(u.attached_managed_policies()),
                    inline: inline(u.user_policy_list().iter().map(|p| (p.policy_name(), p.policy_document()))),
                    groups: u.group_list().to_vec(),
                    last_used: None,
                });
            }
            for g in out.group_detail_list() {
                details.principals.push(Principal {
                    kind: PrincipalKind::Group,
                    name: g.group_name().unwrap_or_default().to_owned(),
                    arn: g.arn().unwrap_or_default().to_owned(),
                    path: g.path().unwrap_or_default().to_owned(),
                    created: g.create_date().and_then(to_chrono),
                    attached: attached(g.attached_managed_policies()),
                    inline: inline(g.group_policy_list().iter().map(|p| (p.policy_name(), p.policy_document()))),
                    groups: Vec::new(),
                    last_used: None,
                });
            }
            for r in out.role_detail_list() {
                details.principals.push(Principal {
                    kind: PrincipalKind::Role,
                    name: r.role_name().unwrap_or_default().to_owned(),
                    arn: r.arn().unwrap_or_default().to_owned(),
                    path: r.path().unwrap_or_default().to_owned(),
                    created: r.create_date().and_then(to_chrono),
                    attached: attached(r.attached_managed_policies()),
                    inline: inline(r.role_policy_list().iter().map(|p| (p.policy_name(), p.policy_document()))),
                    groups: Vec::new(),
                    last_used: r.role_last_used().and_then(|l| l.last_used_date()).and_then(to_chrono),
                });
            }
            for p in out.policies() {
                let default = p.policy_version_list().iter().find(|v| v.is_default_version());
                if let (Some(arn), Some(document)) = (p.arn(), default.and_then(|v| v.document())) {
                    details.policies.insert(arn.to_owned(), decode_document(document));
                }
            }
            match out.marker().filter(|_| out.is_truncated()) {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(details),
            }
        }
    }

    async fn password_policy(&self) -> Result<Option<PasswordPolicy>, ApiError> {
        match self.client.get_account_password_policy().send().await {
            Ok(out) => Ok(out.password_policy().map(|p| PasswordPolicy {
                min_length: p.minimum_password_length().unwrap_or(0),
                numbers: p.require_numbers(),
                uppercase: p.require_uppercase_characters(),
                lowercase: p.require_lowercase_characters(),
                symbols: p.require_symbols(),
                users_may_change: p.allow_users_to_change_password(),
                max_age_days: p.max_password_age(),
                reuse_prevention: p.password_reuse_prevention(),
                hard_expiry: p.hard_expiry().unwrap_or(false),
            })),
            Err(e) => {
                let e = ApiError::from_sdk("iam:GetAccountPasswordPolicy", e);
                if e.is("NoSuchEntity") { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn set_password_policy(&self, p: &PasswordPolicy) -> Result<(), ApiError> {
        self.client
            .update_account_password_policy()
            .minimum_password_length(p.min_length)
            .require_numbers(p.numbers)
            .require_uppercase_characters(p.uppercase)
            .require_lowercase_characters(p.lowercase)
            .require_symbols(p.symbols)
            .allow_users_to_change_password(p.users_may_change)
            .set_max_password_age(p.max_age_days)
            .set_password_reuse_prevention(p.reuse_prevention)
            .hard_expiry(p.hard_expiry)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk("iam:UpdateAccountPasswordPolicy", e))
    }
}

/// Judges every user, group and role, and the password policy.
#[derive(Clone)]
pub struct IamPostureCollector {
    api: Arc<dyn PostureApi>,
    config: PostureConfig,
    account: AccountGuard,
}

impl IamPostureCollector {
    /// Through the SDK; evidence names the credentials' account.
    pub fn new(sdk: &aws_config::SdkConfig, config: PostureConfig) -> Self {
        Self::with_api(Arc::new(SdkPosture::new(sdk)), config).with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`PostureApi`].
    pub fn with_api(api: Arc<dyn PostureApi>, config: PostureConfig) -> Self {
        Self { api, config, account: AccountGuard::unchecked() }
    }

    /// The account evidence names when no principal's ARN gives it.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }
}

#[async_trait]
impl Collector for IamPostureCollector {
    fn name(&self) -> &str {
        "aws-iam-posture"
    }

    fn checks(&self) -> Vec<Check> {
        let mut checks = principal_catalogue().checks();
        checks.extend(password_catalogue().checks());
        checks
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let now = Utc::now();
        let mut evidence = Vec::new();
        let mut account = None;
        if principal_catalogue().any_wanted(scope) {
            // Every principal's checks need the whole read (a user's groups): a failed read is the collector's gap.
            let details =
                self.api.authorization_details().await.map_err(|e| e.into_collect_error("aws-iam-posture"))?;
            account = details.principals.iter().find_map(|p| account_of(&p.arn));
            let context = PostureContext { details, config: self.config.clone(), now };
            for p in &context.details.principals {
                let resource = ResourceRef::new("aws", p.kind.resource_kind(), p.arn.clone(), p.name.clone())
                    .with_account_region(account_of(&p.arn), None);
                evidence.extend(principal_catalogue().judge(p, &context, resource, scope, now));
            }
            info!(
                principals = context.details.principals.len(),
                policies = context.details.policies.len(),
                "IAM posture read"
            );
        }
        if password_catalogue().any_wanted(scope) {
            if account.is_none() {
                account = self.account.account().await.ok().flatten();
            }
            let id = format!("arn:aws:iam::{}:account-password-policy", account.as_deref().unwrap_or("unknown"));
            let resource = ResourceRef::new("aws", "AWSAccount", id, "<account password policy>")
                .with_account_region(account, None);
            evidence.extend(match self.api.password_policy().await {
                Ok(policy) => password_catalogue().judge(&policy, &self.config, resource, scope, now),
                // A denied read is error evidence naming the permission, never a pass.
                Err(e) => password_catalogue().unreadable(resource, &e.explain(), scope, now, |_| true),
            });
        }
        Ok(evidence.into())
    }
}

#[cfg(test)]
mod tests {
    use compliance_core::Status;

    use super::*;

    #[tokio::test]
    async fn a_denied_password_policy_read_is_error_evidence_and_a_denied_details_read_a_gap()
    -> compliance_core::Result<()> {
        let mut api = MockPostureApi::new();
        api.expect_authorization_details().returning(|| Ok(AuthorizationDetails::default()));
        api.expect_password_policy()
            .returning(|| Err(ApiError::new("iam:GetAccountPasswordPolicy", Some("AccessDenied"), "no", Some(403))));
        let c = IamPostureCollector::with_api(Arc::new(api), PostureConfig::default()).collect(&Scope::all()).await?;
        assert_eq!(c.evidence.len(), 1);
        assert_eq!(c.evidence[0].status, Status::Error);
        assert!(c.evidence[0].message.contains("iam:GetAccountPasswordPolicy permission"), "{}", c.evidence[0].message);

        let mut api = MockPostureApi::new();
        api.expect_authorization_details().returning(|| {
            Err(ApiError::new("iam:GetAccountAuthorizationDetails", Some("AccessDenied"), "no", Some(403)))
        });
        let denied = IamPostureCollector::with_api(Arc::new(api), PostureConfig::default())
            .collect(&Scope::only(["aws.iam.admin_access"]))
            .await;
        assert!(denied.err().is_some_and(|e| e.is_permission_denied()));
        Ok(())
    }
}
