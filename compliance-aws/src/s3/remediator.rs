//! The S3 remediator: public access block, default encryption, versioning
//! and the SSL-only policy, each a reversible call, re-verified.

use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::{
    Change, CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk, Scope, Status,
};
use serde_json::{Value, json};

use super::S3Config;
use super::api::{BucketApi, SdkBuckets};
use super::checks::{catalogue, judge_ssl_only, with_ssl_only};
use super::collector::judge_bucket;
use super::model::PublicAccessBlock;
use crate::AccountGuard;
use crate::api::ApiError;

/// Fixes S3 failures: public access block, default encryption, versioning,
/// SSL-only policy (merged into the existing policy). S3 has no server-side
/// dry run: the dry run reads the current state and shows the exact call and
/// the before and after; apply makes the call, then re-reads and re-judges.
#[derive(Clone)]
pub struct S3Remediator {
    api: Arc<dyn BucketApi>,
    config: S3Config,
    account: AccountGuard,
}

impl S3Remediator {
    /// Through the SDK. It acts only on evidence of the credentials' own
    /// account (learned with STS `GetCallerIdentity`).
    pub fn new(sdk: &aws_config::SdkConfig, config: S3Config) -> Self {
        let api = Arc::new(SdkBuckets::new(sdk, config.force_path_style));
        Self::with_api(api, config).with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`BucketApi`]. It compares no account until
    /// [`with_account`](Self::with_account) names one.
    pub fn with_api(api: Arc<dyn BucketApi>, config: S3Config) -> Self {
        Self { api, config, account: AccountGuard::unchecked() }
    }

    /// Plans and applies only for evidence of this account; any other is
    /// refused.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }

    fn failure(&self, reason: impl std::fmt::Display) -> Error {
        Error::remediation("aws-s3", reason.to_string())
    }

    /// A failed call, kept as the source.
    fn call_failed(&self, e: ApiError) -> Error {
        Error::remediation_from("aws-s3", e.explain(), e)
    }

    /// The change for one check on one bucket: (operation, before, after, risk, payload).
    async fn change(
        &self,
        check: &str,
        bucket: &str,
        region: &str,
    ) -> compliance_core::Result<Option<(Change, Risk, Value)>> {
        let explain = |e: ApiError| self.call_failed(e);
        Ok(match check {
            "aws.s3.public_access_block" => {
                let before = self.api.public_access_block(bucket, region).await.map_err(explain)?;
                (before != Some(PublicAccessBlock::ALL_ON)).then(|| {
                    let after = json!(PublicAccessBlock::ALL_ON);
                    (
                        Change::new(
                            format!("s3:PutBucketPublicAccessBlock --bucket {bucket}"),
                            format!("{bucket}.PublicAccessBlockConfiguration"),
                            json!(before),
                            after.clone(),
                        ),
                        Risk::Medium,
                        after,
                    )
                })
            }
            "aws.s3.default_encryption" => {
                let before = self.api.encryption(bucket, region).await.map_err(explain)?;
                before.is_none().then(|| {
                    let after = match &self.config.kms_key_id {
                        Some(key) => json!({ "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key }),
                        None => json!({ "SSEAlgorithm": "AES256" }),
                    };
                    (
                        Change::new(
                            format!("s3:PutEncryptionConfiguration --bucket {bucket}"),
                            format!("{bucket}.ServerSideEncryptionConfiguration"),
                            Value::Null,
                            after.clone(),
                        ),
                        Risk::Low,
                        after,
                    )
                })
            }
            "aws.s3.versioning" => {
                let before = self.api.versioning(bucket, region).await.map_err(explain)?;
                (before.status.as_deref() != Some("Enabled")).then(|| {
                    (
                        Change::new(
                            format!("s3:PutBucketVersioning --bucket {bucket}"),
                            format!("{bucket}.Versioning.Status"),
                            json!(before.status),
                            json!("Enabled"),
                        ),
                        Risk::Low,
                        json!({ "Status": "Enabled" }),
                    )
                })
            }
            "aws.s3.ssl_only" => {
                let before = self.api.policy(bucket, region).await.map_err(explain)?;
                if judge_ssl_only(before.as_deref(), bucket).status == Status::Pass {
                    None
                } else {
                    let merged = with_ssl_only(before.as_deref(), bucket).map_err(|e| self.failure(e))?;
                    let before_doc = before.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
                    let after: Value = serde_json::from_str(&merged).map_err(|e| self.failure(e))?;
                    Some((
                        Change::new(
                            format!("s3:PutBucketPolicy --bucket {bucket}"),
                            format!("{bucket}.Policy"),
                            json!(before_doc),
                            after.clone(),
                        ),
                        Risk::Medium,
                        after,
                    ))
                }
            }
            _ => None,
        })
    }
}

#[async_trait]
impl Remediator for S3Remediator {
    fn name(&self) -> &str {
        "aws-s3"
    }

    fn fixes(&self) -> Vec<CheckId> {
        catalogue().remediable()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || !self.fixes().contains(&evidence.check_id) {
            return Ok(None);
        }
        self.account.admit(self.name(), &evidence.resource).await?;
        let bucket = &evidence.resource.name;
        let region = match &evidence.resource.region {
            Some(r) => r.clone(),
            None => self.api.bucket_region(bucket).await.map_err(|e| self.call_failed(e))?,
        };
        let Some((change, risk, payload)) = self.change(evidence.check_id.as_str(), bucket, &region).await? else {
            return Ok(None);
        };
        let summary = format!("{} on bucket {bucket}", change.operation.split(' ').next().unwrap_or_default());
        Ok(Some(RemediationPlan::new(self.name(), evidence, summary, vec![change], risk, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        self.account.admit(self.name(), &plan.resource).await?;
        let bucket = plan.resource.name.clone();
        let region = match &plan.resource.region {
            Some(r) => r.clone(),
            None => self.api.bucket_region(&bucket).await.map_err(|e| self.call_failed(e))?,
        };
        if mode == Mode::DryRun {
            // Re-plan against the current state: what would be sent now.
            let now = self.change(plan.check_id.as_str(), &bucket, &region).await?;
            let record = json!({ "would_call": now.as_ref().map(|(c, _, _)| c.operation.clone()), "request": now.as_ref().map(|(_, _, p)| p.clone()) });
            let message = if now.is_some() {
                "dry run: nothing changed; the call above would be made"
            } else {
                "dry run: nothing to change any more"
            };
            return Ok(RemediationOutcome::new(plan, mode, false, message).with_record(record));
        }
        let explain = |e: ApiError| self.call_failed(e);
        let check = plan.check_id.as_str();
        let changed = match self.change(check, &bucket, &region).await? {
            None => false,
            Some((_, _, payload)) => {
                match check {
                    "aws.s3.public_access_block" => self
                        .api
                        .put_public_access_block(&bucket, &region, PublicAccessBlock::ALL_ON)
                        .await
                        .map_err(explain)?,
                    "aws.s3.default_encryption" => self
                        .api
                        .put_encryption(&bucket, &region, self.config.kms_key_id.clone())
                        .await
                        .map_err(explain)?,
                    "aws.s3.versioning" => self.api.enable_versioning(&bucket, &region).await.map_err(explain)?,
                    "aws.s3.ssl_only" => {
                        self.api.put_policy(&bucket, &region, payload.to_string()).await.map_err(explain)?
                    }
                    other => return Err(self.failure(format!("no fix is known for {other}"))),
                }
                true
            }
        };
        let account = plan.resource.account.as_deref();
        let verification = judge_bucket(self.api.as_ref(), &bucket, account, &Scope::only([check]))
            .await
            .into_iter()
            .next()
            .ok_or_else(|| self.failure(format!("{check} produced no evidence after the change")))?;
        let message = if changed {
            format!("{check} fixed on bucket {bucket}: now {}", verification.status)
        } else {
            format!("{check} needed no change on bucket {bucket}")
        };
        Ok(RemediationOutcome::new(plan, mode, changed, message)
            .with_record(json!({ "request": plan.payload, "changed": changed }))
            .with_verification(verification))
    }
}
