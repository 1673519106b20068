//! A bucket's settings, and [`BucketState`]: what one source knows of
//! them. The live collector reads it from S3; Terraform reads it from the
//! configuration or a plan; the catalogue judges it the same way.

use compliance_core::Verdict;
use serde::{Deserialize, Serialize};

/// `PublicAccessBlockConfiguration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlock {
    /// `BlockPublicAcls`.
    pub block_public_acls: bool,
    /// `IgnorePublicAcls`.
    pub ignore_public_acls: bool,
    /// `BlockPublicPolicy`.
    pub block_public_policy: bool,
    /// `RestrictPublicBuckets`.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// The names of the settings that are off, in AWS's order.
    pub fn off(&self) -> Vec<&'static str> {
        [
            ("BlockPublicAcls", self.block_public_acls),
            ("IgnorePublicAcls", self.ignore_public_acls),
            ("BlockPublicPolicy", self.block_public_policy),
            ("RestrictPublicBuckets", self.restrict_public_buckets),
        ]
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(name, _)| name)
        .collect()
    }

    /// All four settings on.
    pub const ALL_ON: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// The default encryption of a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `SSEAlgorithm` (`AES256`, `aws:kms`, `aws:kms:dsse`).
    pub algorithm: String,
    /// `KMSMasterKeyID`, an ARN or alias (not a secret).
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`.
    pub bucket_key_enabled: Option<bool>,
}

/// The versioning state of a bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioning {
    /// `Status`: `Enabled`, `Suspended`, or none (never enabled).
    pub status: Option<String>,
    /// `MfaDelete`.
    pub mfa_delete: Option<String>,
}

/// Where a bucket's access logs go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    /// `TargetBucket`.
    pub target_bucket: String,
    /// `TargetPrefix`.
    pub target_prefix: String,
}

/// One setting as a source knows it: its value, or a verdict the source
/// already reached (a denied call, a bucket deleted meanwhile, a value known
/// only when Terraform plans, a default S3 applies).
#[derive(Clone, Debug, PartialEq)]
pub enum Setting<T> {
    /// The value read or declared (`None` for a configuration that is not set).
    Read(T),
    /// The verdict every check of this setting gives.
    Decided(Verdict),
}

impl<T> Setting<T> {
    /// The verdict of `judge` on the value, or the decided one.
    pub fn judge(&self, judge: impl FnOnce(&T) -> Verdict) -> Verdict {
        match self {
            Setting::Read(value) => judge(value),
            Setting::Decided(verdict) => verdict.clone(),
        }
    }
}

/// What a source knows of one bucket: the input of every S3 check.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BucketState {
    /// The bucket's name (or its Terraform address when the name is computed).
    pub name: String,
    /// Its public access block.
    pub public_access_block: Setting<Option<PublicAccessBlock>>,
    /// Its default encryption.
    pub encryption: Setting<Option<Encryption>>,
    /// Its versioning.
    pub versioning: Setting<Versioning>,
    /// Its bucket policy, as JSON text.
    pub policy: Setting<Option<String>>,
    /// Its access logging.
    pub logging: Setting<Option<Logging>>,
}

impl BucketState {
    /// A bucket with nothing configured.
    pub fn unconfigured(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            public_access_block: Setting::Read(None),
            encryption: Setting::Read(None),
            versioning: Setting::Read(Versioning::default()),
            policy: Setting::Read(None),
            logging: Setting::Read(None),
        }
    }
}
