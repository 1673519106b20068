//! The CloudTrail calls: [`TrailApi`] and its SDK implementation.

use async_trait::async_trait;

use super::Trail;
use crate::api::ApiError;

/// The CloudTrail calls the checks and the remediator make.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TrailApi: Send + Sync {
    /// `cloudtrail:DescribeTrails` (this region's and multi-region trails),
    /// each with `cloudtrail:GetTrailStatus`. Bucket settings are not read here.
    async fn trails(&self) -> Result<Vec<Trail>, ApiError>;

    /// One trail by ARN, read in its home region, with its status; `None`
    /// when it no longer exists.
    async fn trail(&self, arn: &str, home_region: &str) -> Result<Option<Trail>, ApiError>;

    /// `cloudtrail:UpdateTrail` with `EnableLogFileValidation`, in the
    /// trail's home region (the only region that may change it).
    async fn set_log_file_validation(&self, arn: &str, home_region: &str, enabled: bool) -> Result<(), ApiError>;
}

/// [`TrailApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkTrails {
    sdk: aws_config::SdkConfig,
    client: aws_sdk_cloudtrail::Client,
}

impl SdkTrails {
    /// From an SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { sdk: sdk.clone(), client: aws_sdk_cloudtrail::Client::new(sdk) }
    }

    /// A client of the trail's home region.
    fn in_region(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        if self.sdk.region().is_some_and(|r| r.as_ref() == region) {
            return self.client.clone();
        }
        let config = aws_sdk_cloudtrail::config::Builder::from(&self.sdk)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(config)
    }
}

/// `DescribeTrails` (every trail, or the ones named) with each one's status.
async fn describe(client: &aws_sdk_cloudtrail::Client, names: Option<Vec<String>>) -> Result<Vec<Trail>, ApiError> {
    // DescribeTrails answers in one page (at most five trails per region, plus multi-region shadows).
    let out = client
        .describe_trails()
        .include_shadow_trails(true)
        .set_trail_name_list(names)
        .send()
        .await
        .map_err(|e| ApiError::from_sdk("cloudtrail:DescribeTrails", e))?;
    let mut trails = Vec::new();
    for t in out.trail_list() {
        let arn = t.trail_arn().unwrap_or_default().to_owned();
        let logging = match client.get_trail_status().name(&arn).send().await {
            Ok(status) => Ok(status.is_logging().unwrap_or(false)),
            Err(e) => Err(ApiError::from_sdk("cloudtrail:GetTrailStatus", e).explain()),
        };
        trails.push(Trail {
            name: t.name().unwrap_or_default().to_owned(),
            arn,
            home_region: t.home_region().unwrap_or_default().to_owned(),
            multi_region: t.is_multi_region_trail().unwrap_or(false),
            logging,
            log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
            kms_key: t.kms_key_id().map(str::to_owned),
            bucket: t.s3_bucket_name().map(str::to_owned),
            bucket_block: Ok(None),
        });
    }
    Ok(trails)
}

#[async_trait]
impl TrailApi for SdkTrails {
    async fn trails(&self) -> Result<Vec<Trail>, ApiError> {
        describe(&self.client, None).await
    }

    async fn trail(&self, arn: &str, home_region: &str) -> Result<Option<Trail>, ApiError> {
        let trails = describe(&self.in_region(home_region), Some(vec![arn.to_owned()])).await?;
        Ok(trails.into_iter().find(|t| t.arn == arn))
    }

    async fn set_log_file_validation(&self, arn: &str, home_region: &str, enabled: bool) -> Result<(), ApiError> {
        self.in_region(home_region)
            .update_trail()
            .name(arn)
            .enable_log_file_validation(enabled)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("cloudtrail:UpdateTrail", e))?;
        Ok(())
    }
}
