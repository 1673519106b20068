//! The S3 collector: every bucket of the account, read in its own region.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{Check, Collection, Collector, Evidence, Gap, GapKind, ResourceRef, Scope, Status, Verdict};
use futures::StreamExt;
use serde_json::json;
use tracing::info;

use super::S3Config;
use super::api::{BucketApi, SdkBuckets};
use super::checks::{catalogue, checks};
use super::model::{BucketState, Setting};
use crate::AccountGuard;
use crate::api::ApiError;

/// Judges every bucket of the account, in its own region.
#[derive(Clone)]
pub struct S3Collector {
    api: Arc<dyn BucketApi>,
    config: S3Config,
    account: AccountGuard,
}

impl S3Collector {
    /// Through the SDK. Evidence names the credentials' account (learned
    /// with STS `GetCallerIdentity`), which remediation compares.
    pub fn new(sdk: &aws_config::SdkConfig, config: S3Config) -> Self {
        let api = Arc::new(SdkBuckets::new(sdk, config.force_path_style));
        Self::with_api(api, config).with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`BucketApi`]. Evidence names no account until
    /// [`with_account`](Self::with_account) gives one.
    pub fn with_api(api: Arc<dyn BucketApi>, config: S3Config) -> Self {
        Self { api, config, account: AccountGuard::unchecked() }
    }

    /// The account evidence names.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }
}

fn bucket_resource(bucket: &str, account: Option<&str>, region: Option<&str>) -> ResourceRef {
    ResourceRef::new("aws", "S3Bucket", format!("arn:aws:s3:::{bucket}"), bucket)
        .with_account_region(account.map(str::to_owned), region.map(str::to_owned))
}

/// Turns a read into a setting: a denied call is an `error` naming the
/// permission; a bucket deleted meanwhile is not applicable.
fn setting<T>(result: Result<T, ApiError>) -> Setting<T> {
    match result {
        Ok(value) => Setting::Read(value),
        Err(e) => Setting::Decided(unread(&e)),
    }
}

fn unread(e: &ApiError) -> Verdict {
    if e.is("NoSuchBucket") {
        return Verdict::new(Status::NotApplicable, "the bucket was deleted during the scan", json!({}));
    }
    Verdict::new(
        Status::Error,
        e.explain(),
        json!({ "operation": e.operation, "code": e.code, "http_status": e.status }),
    )
}

/// Reads one bucket's settings in its region, all at once.
pub async fn read_bucket(api: &dyn BucketApi, bucket: &str, region: &str) -> BucketState {
    let (public_access_block, encryption, versioning, policy, logging) = futures::join!(
        api.public_access_block(bucket, region),
        api.encryption(bucket, region),
        api.versioning(bucket, region),
        api.policy(bucket, region),
        api.logging(bucket, region),
    );
    let mut state = BucketState::unconfigured(bucket);
    state.public_access_block = setting(public_access_block);
    state.encryption = setting(encryption);
    state.versioning = setting(versioning);
    state.policy = setting(policy);
    state.logging = setting(logging);
    state
}

/// Judges one bucket of `account` with every check in `scope`.
pub async fn judge_bucket(api: &dyn BucketApi, bucket: &str, account: Option<&str>, scope: &Scope) -> Vec<Evidence> {
    let now = Utc::now();
    let catalogue = catalogue();
    if !catalogue.any_wanted(scope) {
        return Vec::new();
    }
    let region = match api.bucket_region(bucket).await {
        Ok(r) => r,
        Err(e) => return catalogue.settle(&unread(&e), bucket_resource(bucket, account, None), scope, now, |_| true),
    };
    let state = read_bucket(api, bucket, &region).await;
    catalogue.judge(&state, &(), bucket_resource(bucket, account, Some(&region)), scope, now)
}

#[async_trait]
impl Collector for S3Collector {
    fn name(&self) -> &str {
        "aws-s3"
    }

    fn checks(&self) -> Vec<Check> {
        checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let buckets = self.api.list_buckets().await.map_err(|e| e.into_collect_error("aws-s3"))?;
        let mut gaps = Vec::new();
        let account = match self.account.account().await {
            Ok(account) => account,
            // The verdicts stand; only their account is unknown, and remediation will refuse them.
            Err(e) => {
                let reason = format!("S3 evidence names no account: {}", e.explain());
                gaps.push(Gap::source(e.operation, GapKind::Unreadable, reason));
                None
            }
        };
        let account = account.as_deref();
        let api = self.api.as_ref();
        let mut per_bucket: Vec<(String, Vec<Evidence>)> = futures::stream::iter(buckets.iter().cloned())
            .map(|bucket| async move {
                let evidence = judge_bucket(api, &bucket, account, scope).await;
                (bucket, evidence)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        per_bucket.sort_by(|a, b| a.0.cmp(&b.0));
        let evidence: Vec<Evidence> = per_bucket.into_iter().flat_map(|(_, e)| e).collect();
        info!(buckets = buckets.len(), evidence = evidence.len(), "S3 buckets judged");
        Ok(Collection::new(evidence, gaps))
    }
}
