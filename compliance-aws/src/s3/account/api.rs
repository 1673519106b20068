//! The S3 Control calls of the account-level public access block.

use async_trait::async_trait;

use crate::api::ApiError;
use crate::s3::{PublicAccessBlock, is_missing_configuration};

/// The account-level public access block calls.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AccountBlockApi: Send + Sync {
    /// `s3:GetAccountPublicAccessBlock` (S3 Control `GetPublicAccessBlock`);
    /// `None` when the account has none.
    async fn get(&self, account: &str) -> Result<Option<PublicAccessBlock>, ApiError>;
    /// `s3:PutAccountPublicAccessBlock` (S3 Control `PutPublicAccessBlock`).
    async fn put(&self, account: &str, block: PublicAccessBlock) -> Result<(), ApiError>;
}

/// [`AccountBlockApi`] over the AWS SDK's S3 Control client.
#[derive(Clone, Debug)]
pub struct SdkAccountBlock {
    client: aws_sdk_s3control::Client,
}

impl SdkAccountBlock {
    /// From an SDK configuration. S3 Control addresses the account in the
    /// host name (`<account>.s3-control.<region>.amazonaws.com`, or
    /// `<account>.<endpoint host>` with a custom endpoint).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_s3control::Client::new(sdk) }
    }
}

#[async_trait]
impl AccountBlockApi for SdkAccountBlock {
    async fn get(&self, account: &str) -> Result<Option<PublicAccessBlock>, ApiError> {
        match self.client.get_public_access_block().account_id(account).send().await {
            Ok(out) => Ok(out.public_access_block_configuration().map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            })),
            Err(e) => {
                let e = ApiError::from_sdk("s3:GetAccountPublicAccessBlock", e);
                if is_missing_configuration(&e) { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn put(&self, account: &str, block: PublicAccessBlock) -> Result<(), ApiError> {
        use aws_sdk_s3control::types::PublicAccessBlockConfiguration;
        let config = PublicAccessBlockConfiguration::builder()
            .block_public_acls(block.block_public_acls)
            .ignore_public_acls(block.ignore_public_acls)
            .block_public_policy(block.block_public_policy)
            .restrict_public_buckets(block.restrict_public_buckets)
            .build();
        self.client
            .put_public_access_block()
            .account_id(account)
            .public_access_block_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk("s3:PutAccountPublicAccessBlock", e))
    }
}
