//! [`CloudTrailCollector`]: reads the trails and their buckets, and judges them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{Check, Collection, Collector, ResourceRef, Scope};

use super::api::{SdkTrails, TrailApi};
use super::{ACCOUNT, TRAIL_KIND, TRAILS};
use crate::AccountGuard;
use crate::s3::{BucketApi, SdkBuckets};

/// Judges the account's trails.
#[derive(Clone)]
pub struct CloudTrailCollector {
    trails: Arc<dyn TrailApi>,
    buckets: Arc<dyn BucketApi>,
    account: AccountGuard,
}

impl CloudTrailCollector {
    /// Through the SDK; `path_style` for S3 endpoints that need it (moto, MinIO).
    pub fn new(sdk: &aws_config::SdkConfig, path_style: bool) -> Self {
        Self::with_api(Arc::new(SdkTrails::new(sdk)), Arc::new(SdkBuckets::new(sdk, path_style)))
            .with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`TrailApi`] and [`BucketApi`].
    pub fn with_api(trails: Arc<dyn TrailApi>, buckets: Arc<dyn BucketApi>) -> Self {
        Self { trails, buckets, account: AccountGuard::unchecked() }
    }

    /// The account evidence names.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }
}

#[async_trait]
impl Collector for CloudTrailCollector {
    fn name(&self) -> &str {
        "aws-cloudtrail"
    }

    fn checks(&self) -> Vec<Check> {
        let mut checks = ACCOUNT.checks();
        checks.extend(TRAILS.checks());
        checks
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        if !ACCOUNT.any_wanted(scope) && !TRAILS.any_wanted(scope) {
            return Ok(Collection::default());
        }
        let now = Utc::now();
        let account = self.account.account().await.ok().flatten();
        let mut trails = self.trails.trails().await.map_err(|e| e.into_collect_error("aws-cloudtrail"))?;
        // Multi-region trails appear in every region: each is judged once, by its ARN.
        trails.sort_by(|a, b| a.arn.cmp(&b.arn));
        trails.dedup_by(|a, b| a.arn == b.arn);
        for t in &mut trails {
            if let Some(bucket) = t.bucket.clone() {
                t.bucket_block = match self.buckets.bucket_region(&bucket).await {
                    Ok(region) => self.buckets.public_access_block(&bucket, &region).await.map_err(|e| e.explain()),
                    Err(e) => Err(e.explain()),
                };
            }
        }
        let mut evidence = Vec::new();
        let id = format!("arn:aws:cloudtrail::{}:account", account.as_deref().unwrap_or("unknown"));
        let resource =
            ResourceRef::new("aws", "AWSAccount", id, "<account trails>").with_account_region(account.clone(), None);
        evidence.extend(ACCOUNT.judge(trails.as_slice(), &(), resource, scope, now));
        for t in &trails {
            let resource = ResourceRef::new("aws", TRAIL_KIND, t.arn.clone(), t.name.clone())
                .with_account_region(account.clone(), Some(t.home_region.clone()));
            evidence.extend(TRAILS.judge(t, &(), resource, scope, now));
        }
        Ok(evidence.into())
    }
}
