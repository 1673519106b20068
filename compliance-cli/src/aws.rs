//! AWS wiring: the SDK configuration from the flags, and the collectors.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use compliance_aws::config_rules::ConfigRulesCollector;
use compliance_aws::iam::{IamCollector, IamConfig};
use compliance_aws::s3::{S3Collector, S3Config};
use compliance_core::{Check, Collection, Collector, Error, Scope};

use crate::UsageError;
use crate::args::AwsArgs;

/// The SDK configuration: the default credential chain, with the region,
/// endpoint and retry attempts given.
pub async fn sdk_config(args: &AwsArgs) -> Result<SdkConfig, UsageError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(args.aws_max_attempts.max(1)));
    if let Some(region) = &args.aws_region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.aws_endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(UsageError("no AWS region: give --aws-region or set AWS_REGION".into()));
    }
    Ok(sdk)
}

/// S3 settings: path-style addressing for custom endpoints.
pub fn s3_config(args: &AwsArgs, concurrency: usize) -> S3Config {
    S3Config::default().with_concurrency(concurrency).with_path_style(args.aws_endpoint_url.is_some())
}

/// A source that could not even be set up: its collection fails, so the run
/// shows it as a gap instead of stopping.
struct Unavailable {
    name: &'static str,
    reason: String,
}

#[async_trait]
impl Collector for Unavailable {
    fn name(&self) -> &str {
        self.name
    }
    fn checks(&self) -> Vec<Check> {
        Vec::new()
    }
    async fn collect(&self, _scope: &Scope) -> compliance_core::Result<Collection> {
        Err(Error::Collect { collector: self.name.into(), reason: self.reason.clone() })
    }
}

/// The AWS collectors: IAM, S3, and the AWS Config rules (named, or every
/// rule of the region).
pub async fn collectors(
    sdk: &SdkConfig,
    args: &AwsArgs,
    config_rules: &[String],
    inactive_days: i64,
    bucket_concurrency: usize,
) -> Vec<Arc<dyn Collector>> {
    let config: Arc<dyn Collector> = if config_rules.is_empty() {
        match ConfigRulesCollector::discover(sdk).await {
            Ok(c) => Arc::new(c),
            Err(Error::Collect { reason, .. }) => Arc::new(Unavailable { name: "aws-config", reason }),
            Err(e) => Arc::new(Unavailable { name: "aws-config", reason: e.to_string() }),
        }
    } else {
        match ConfigRulesCollector::new(sdk, config_rules.iter().cloned()) {
            Ok(c) => Arc::new(c),
            Err(e) => Arc::new(Unavailable { name: "aws-config", reason: e.to_string() }),
        }
    };
    vec![
        Arc::new(IamCollector::new(sdk, IamConfig::default().with_inactive_days(inactive_days))),
        Arc::new(S3Collector::new(sdk, s3_config(args, bucket_concurrency))),
        config,
    ]
}
