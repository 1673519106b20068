//! The S3 calls, as a facade over the SDK (one client per bucket region).

#[cfg(feature = "s3")]
use std::collections::HashMap;
#[cfg(feature = "s3")]
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{Encryption, Logging, PublicAccessBlock, Versioning};
use crate::api::ApiError;

/// The S3 calls the collector and the remediator make. Reads answer
/// `Ok(None)` when the bucket has no such configuration.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait BucketApi: Send + Sync {
    /// `s3:ListAllMyBuckets`, every page.
    async fn list_buckets(&self) -> Result<Vec<String>, ApiError>;
    /// `s3:GetBucketLocation`, as a region name.
    async fn bucket_region(&self, bucket: &str) -> Result<String, ApiError>;
    /// `s3:GetBucketPublicAccessBlock`.
    async fn public_access_block(&self, bucket: &str, region: &str) -> Result<Option<PublicAccessBlock>, ApiError>;
    /// `s3:GetEncryptionConfiguration`.
    async fn encryption(&self, bucket: &str, region: &str) -> Result<Option<Encryption>, ApiError>;
    /// `s3:GetBucketVersioning`.
    async fn versioning(&self, bucket: &str, region: &str) -> Result<Versioning, ApiError>;
    /// `s3:GetBucketPolicy`: the policy document.
    async fn policy(&self, bucket: &str, region: &str) -> Result<Option<String>, ApiError>;
    /// `s3:GetBucketLogging`.
    async fn logging(&self, bucket: &str, region: &str) -> Result<Option<Logging>, ApiError>;
    /// `s3:PutBucketPublicAccessBlock`.
    async fn put_public_access_block(
        &self,
        bucket: &str,
        region: &str,
        block: PublicAccessBlock,
    ) -> Result<(), ApiError>;
    /// `s3:PutEncryptionConfiguration`: SSE-S3, or SSE-KMS with this key.
    async fn put_encryption(&self, bucket: &str, region: &str, kms_key_id: Option<String>) -> Result<(), ApiError>;
    /// `s3:PutBucketVersioning` with `Enabled`.
    async fn enable_versioning(&self, bucket: &str, region: &str) -> Result<(), ApiError>;
    /// `s3:PutBucketPolicy`.
    async fn put_policy(&self, bucket: &str, region: &str, policy: String) -> Result<(), ApiError>;
}

/// The error codes S3 answers when a configuration is simply not set: a
/// fail for the check, not an error.
pub fn is_missing_configuration(error: &ApiError) -> bool {
    matches!(
        error.code.as_deref(),
        Some(
            "NoSuchPublicAccessBlockConfiguration"
                | "ServerSideEncryptionConfigurationNotFoundError"
                | "NoSuchBucketPolicy"
        )
    )
}

#[cfg(feature = "s3")]
/// [`BucketApi`] over the AWS SDK, with one client per bucket region.
pub struct SdkBuckets {
    sdk: aws_config::SdkConfig,
    force_path_style: bool,
    clients: Mutex<HashMap<String, aws_sdk_s3::Client>>,
}

#[cfg(feature = "s3")]
impl SdkBuckets {
    /// From an SDK configuration. `force_path_style` for S3-compatible
    /// endpoints and emulators.
    pub fn new(sdk: &aws_config::SdkConfig, force_path_style: bool) -> Self {
        Self { sdk: sdk.clone(), force_path_style, clients: Mutex::new(HashMap::new()) }
    }

    fn client(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let key = region.unwrap_or("").to_owned();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(key)
            .or_insert_with(|| {
                let mut builder = aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(self.force_path_style);
                if let Some(r) = region {
                    builder = builder.region(aws_sdk_s3::config::Region::new(r.to_owned()));
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            })
            .clone()
    }
}

#[cfg(feature = "s3")]
fn missing_as_none<T>(result: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_missing_configuration(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(feature = "s3")]
#[async_trait]
impl BucketApi for SdkBuckets {
    async fn list_buckets(&self) -> Result<Vec<String>, ApiError> {
        let client = self.client(None);
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = client
                .list_buckets()
                .max_buckets(1000)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("s3:ListAllMyBuckets", e))?;
            names.extend(out.buckets().iter().filter_map(|b| b.name().map(str::to_owned)));
            match out.continuation_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    async fn bucket_region(&self, bucket: &str) -> Result<String, ApiError> {
        let out = self
            .client(None)
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("s3:GetBucketLocation", e))?;
        Ok(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_owned(),
            Some("EU") => "eu-west-1".to_owned(),
            Some(r) => r.to_owned(),
        })
    }

    async fn public_access_block(&self, bucket: &str, region: &str) -> Result<Option<PublicAccessBlock>, ApiError> {
        let result = self.client(Some(region)).get_public_access_block().bucket(bucket).send().await;
        missing_as_none(result.map_err(|e| ApiError::from_sdk("s3:GetBucketPublicAccessBlock", e))).map(|o| {
            o.map(|out| {
                let c = out.public_access_block_configuration();
                PublicAccessBlock {
                    block_public_acls: c.and_then(|c| c.block_public_acls()).unwrap_or(false),
                    ignore_public_acls: c.and_then(|c| c.ignore_public_acls()).unwrap_or(false),
                    block_public_policy: c.and_then(|c| c.block_public_policy()).unwrap_or(false),
                    restrict_public_buckets: c.and_then(|c| c.restrict_public_buckets()).unwrap_or(false),
                }
            })
        })
    }

    async fn encryption(&self, bucket: &str, region: &str) -> Result<Option<Encryption>, ApiError> {
        let result = self.client(Some(region)).get_bucket_encryption().bucket(bucket).send().await;
        let out = missing_as_none(result.map_err(|e| ApiError::from_sdk("s3:GetEncryptionConfiguration", e)))?;
        Ok(out.and_then(|out| {
            let rule = out.server_side_encryption_configuration()?.rules().first()?;
            let default = rule.apply_server_side_encryption_by_default()?;
            Some(Encryption {
                algorithm: default.sse_algorithm().as_str().to_owned(),
                kms_key_id: default.kms_master_key_id().map(str::to_owned),
                bucket_key_enabled: rule.bucket_key_enabled(),
            })
        }))
    }

    async fn versioning(&self, bucket: &str, region: &str) -> Result<Versioning, ApiError> {
        let out = self
            .client(Some(region))
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("s3:GetBucketVersioning", e))?;
        Ok(Versioning {
            status: out.status().map(|s| s.as_str().to_owned()),
            mfa_delete: out.mfa_delete().map(|s| s.as_str().to_owned()),
        })
    }

    async fn policy(&self, bucket: &str, region: &str) -> Result<Option<String>, ApiError> {
        let result = self.client(Some(region)).get_bucket_policy().bucket(bucket).send().await;
        let out = missing_as_none(result.map_err(|e| ApiError::from_sdk("s3:GetBucketPolicy", e)))?;
        Ok(out.and_then(|o| o.policy().map(str::to_owned)))
    }

    async fn logging(&self, bucket: &str, region: &str) -> Result<Option<Logging>, ApiError> {
        let out = self
            .client(Some(region))
            .get_bucket_logging()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("s3:GetBucketLogging", e))?;
        Ok(out.logging_enabled().map(|l| Logging {
            target_bucket: l.target_bucket().to_owned(),
            target_prefix: l.target_prefix().to_owned(),
        }))
    }

    async fn put_public_access_block(
        &self,
        bucket: &str,
        region: &str,
        block: PublicAccessBlock,
    ) -> Result<(), ApiError> {
        use aws_sdk_s3::types::PublicAccessBlockConfiguration;
        let config = PublicAccessBlockConfiguration::builder()
            .block_public_acls(block.block_public_acls)
            .ignore_public_acls(block.ignore_public_acls)
            .block_public_policy(block.block_public_policy)
            .restrict_public_buckets(block.restrict_public_buckets)
            .build();
        self.client(Some(region))
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk("s3:PutBucketPublicAccessBlock", e))
    }

    async fn put_encryption(&self, bucket: &str, region: &str, kms_key_id: Option<String>) -> Result<(), ApiError> {
        use aws_sdk_s3::types::{
            ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let op = "s3:PutEncryptionConfiguration";
        let algorithm = if kms_key_id.is_some() { ServerSideEncryption::AwsKms } else { ServerSideEncryption::Aes256 };
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(algorithm)
            .set_kms_master_key_id(kms_key_id)
            .build()
            .map_err(|e| ApiError::new(op, None, e.to_string(), None))?;
        let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| ApiError::new(op, None, e.to_string(), None))?;
        self.client(Some(region))
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk(op, e))
    }

    async fn enable_versioning(&self, bucket: &str, region: &str) -> Result<(), ApiError> {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.client(Some(region))
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk("s3:PutBucketVersioning", e))
    }

    async fn put_policy(&self, bucket: &str, region: &str, policy: String) -> Result<(), ApiError> {
        self.client(Some(region))
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk("s3:PutBucketPolicy", e))
    }
}
