//! S3 bucket posture, per bucket and in the bucket's own region: public
//! access block, default encryption, versioning, an SSL-only bucket policy,
//! access logging, MFA Delete. And the S3 remediator for the first four.
//!
//! - `model`: a bucket's settings and [`BucketState`], what the live
//!   collector reads and Terraform declares; `checks`: the judges and the
//!   catalogue over a [`BucketState`]; `api`: the S3 calls ([`BucketApi`]);
//!   `collector` and `remediator`.
//! - `account`: the account-level public access block (S3 Control), its
//!   check, collector and remediator.

#[cfg(feature = "s3")]
pub mod account;
mod api;
mod checks;
#[cfg(feature = "s3")]
mod collector;
mod model;
#[cfg(feature = "s3")]
mod remediator;
#[cfg(all(test, feature = "s3"))]
mod tests;

use serde::{Deserialize, Serialize};

#[cfg(all(test, feature = "s3"))]
pub use api::MockBucketApi;
#[cfg(feature = "s3")]
pub use api::SdkBuckets;
pub use api::{BucketApi, is_missing_configuration};
pub use checks::{
    catalogue, checks, judge_encryption, judge_logging, judge_mfa_delete, judge_public_access_block, judge_ssl_only,
    judge_versioning, ssl_only_statement, with_ssl_only,
};
#[cfg(feature = "s3")]
pub use collector::{S3Collector, judge_bucket, read_bucket};
pub use model::{BucketState, Encryption, Logging, PublicAccessBlock, Setting, Versioning};
#[cfg(feature = "s3")]
pub use remediator::S3Remediator;

/// Settings of the S3 collector and remediator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct S3Config {
    /// Buckets judged at once.
    pub concurrency: usize,
    /// Path-style addressing, for S3-compatible endpoints and emulators.
    pub force_path_style: bool,
    /// For the remediator: SSE-KMS with this key instead of SSE-S3.
    pub kms_key_id: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        Self { concurrency: 8, force_path_style: false, kms_key_id: None }
    }
}

impl S3Config {
    /// Sets the number of buckets judged at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets path-style addressing.
    pub fn with_path_style(mut self, on: bool) -> Self {
        self.force_path_style = on;
        self
    }

    /// Sets the KMS key the remediator uses.
    pub fn with_kms_key(mut self, key: impl Into<String>) -> Self {
        self.kms_key_id = Some(key.into());
        self
    }
}
