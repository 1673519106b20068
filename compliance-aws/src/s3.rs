//! S3 bucket posture, per bucket and in the bucket's own region: public
//! access block, default encryption, versioning, an SSL-only bucket policy,
//! access logging. And the S3 remediator for the first four.

#[cfg(feature = "s3")]
use std::collections::HashMap;
#[cfg(feature = "s3")]
use std::sync::Mutex;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{
    Change, Check, CheckId, CheckSpec, Collection, Collector, Error, Evidence, Mode, RemediationOutcome,
    RemediationPlan, Remediator, ResourceRef, Risk, Scope, Severity, Status, Verdict,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::info;

use crate::api::ApiError;

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

/// `aws.s3.public_access_block`: all four settings on.
pub fn judge_public_access_block(block: Option<&PublicAccessBlock>) -> Verdict {
    match block {
        None => {
            Verdict::new(Status::Fail, "no public access block is configured", json!({ "public_access_block": null }))
        }
        Some(b) if *b == PublicAccessBlock::ALL_ON => Verdict::new(
            Status::Pass,
            "all four public access block settings are on",
            json!({ "public_access_block": b }),
        ),
        Some(b) => {
            let off: Vec<&str> = [
                ("BlockPublicAcls", b.block_public_acls),
                ("IgnorePublicAcls", b.ignore_public_acls),
                ("BlockPublicPolicy", b.block_public_policy),
                ("RestrictPublicBuckets", b.restrict_public_buckets),
            ]
            .into_iter()
            .filter(|(_, on)| !on)
            .map(|(name, _)| name)
            .collect();
            Verdict::new(
                Status::Fail,
                format!("public access block settings off: {}", off.join(", ")),
                json!({ "public_access_block": b, "off": off }),
            )
        }
    }
}

/// `aws.s3.default_encryption`: a default encryption rule is set.
pub fn judge_encryption(encryption: Option<&Encryption>) -> Verdict {
    match encryption {
        None => Verdict::new(Status::Fail, "no default encryption is configured", json!({ "encryption": null })),
        Some(e) => Verdict::new(
            Status::Pass,
            format!("objects are encrypted by default with {}", e.algorithm),
            json!({ "encryption": e }),
        ),
    }
}

/// `aws.s3.versioning`: versioning is `Enabled`.
pub fn judge_versioning(v: &Versioning) -> Verdict {
    let details = json!({ "status": v.status, "mfa_delete": v.mfa_delete });
    match v.status.as_deref() {
        Some("Enabled") => Verdict::new(Status::Pass, "versioning is enabled", details),
        Some(s) => Verdict::new(Status::Fail, format!("versioning is {s}"), details),
        None => Verdict::new(Status::Fail, "versioning was never enabled", details),
    }
}

/// `aws.s3.access_logging`: server access logging is on.
pub fn judge_logging(logging: Option<&Logging>) -> Verdict {
    match logging {
        None => Verdict::new(Status::Fail, "server access logging is off", json!({ "logging": null })),
        Some(l) => Verdict::new(
            Status::Pass,
            format!("access logs go to s3://{}/{}", l.target_bucket, l.target_prefix),
            json!({ "logging": l }),
        ),
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn is_everyone(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(map) => map.get("AWS").is_some_and(|aws| as_list(aws).iter().any(|p| p.as_str() == Some("*"))),
        _ => false,
    }
}

/// True when the statement denies every request that is not over TLS, for
/// everyone, on the bucket and its objects.
fn denies_insecure_transport(statement: &Value, bucket: &str) -> bool {
    let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
    let everyone = statement.get("Principal").is_some_and(is_everyone);
    let actions = statement.get("Action").map(as_list).unwrap_or_default();
    let all_actions = actions.iter().any(|a| matches!(a.as_str(), Some("s3:*" | "*")));
    let insecure = statement
        .get("Condition")
        .and_then(|c| c.get("Bool"))
        .and_then(|b| b.get("aws:SecureTransport"))
        .is_some_and(|v| as_list(v).iter().any(|x| x.as_str() == Some("false") || x.as_bool() == Some(false)));
    let resources = statement.get("Resource").map(as_list).unwrap_or_default();
    let covers = |wanted: &str| {
        resources.iter().any(|r| matches!(r.as_str(), Some(s) if s == wanted || s == "*" || s == "arn:aws:s3:::*"))
    };
    deny && everyone
        && all_actions
        && insecure
        && covers(&format!("arn:aws:s3:::{bucket}"))
        && covers(&format!("arn:aws:s3:::{bucket}/*"))
}

/// `aws.s3.ssl_only`: the bucket policy has a statement that denies, for
/// all principals and all S3 actions on the bucket and its objects, any
/// request where `aws:SecureTransport` is false.
pub fn judge_ssl_only(policy: Option<&str>, bucket: &str) -> Verdict {
    let Some(text) = policy else {
        return Verdict::new(
            Status::Fail,
            "the bucket has no policy, so plain HTTP requests are allowed",
            json!({ "policy": null }),
        );
    };
    let Ok(document) = serde_json::from_str::<Value>(text) else {
        return Verdict::new(
            Status::Error,
            "the bucket policy is not valid JSON",
            json!({ "policy_bytes": text.len() }),
        );
    };
    let statements = document.get("Statement").map(as_list).unwrap_or_default();
    let matching: Vec<Option<&str>> = statements
        .iter()
        .filter(|s| denies_insecure_transport(s, bucket))
        .map(|s| s.get("Sid").and_then(Value::as_str))
        .collect();
    let details = json!({ "statements": statements.len(), "denying_statements": matching });
    if matching.is_empty() {
        Verdict::new(
            Status::Fail,
            "no policy statement denies requests without TLS (aws:SecureTransport false)",
            details,
        )
    } else {
        Verdict::new(Status::Pass, "the bucket policy denies requests without TLS", details)
    }
}

/// The statement `ssl_only` looks for.
pub fn ssl_only_statement(bucket: &str, sid: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// Adds the SSL-only statement to a policy, keeping every existing
/// statement; a new policy when there is none.
///
/// ```
/// use compliance_aws::s3::{judge_ssl_only, with_ssl_only};
/// let existing = r#"{"Version":"2012-10-17","Statement":{"Sid":"ReadLogs","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/*"}}"#;
/// let merged = with_ssl_only(Some(existing), "logs")?;
/// let doc: serde_json::Value = serde_json::from_str(&merged)?;
/// assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(2)); // nothing dropped
/// assert_eq!(judge_ssl_only(Some(&merged), "logs").status, compliance_core::Status::Pass);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn with_ssl_only(policy: Option<&str>, bucket: &str) -> Result<String, String> {
    let mut document = match policy {
        Some(text) => {
            serde_json::from_str::<Value>(text).map_err(|e| format!("the existing policy is not valid JSON: {e}"))?
        }
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
    };
    let map = document.as_object_mut().ok_or("the existing policy is not a JSON object")?;
    let mut statements: Vec<Value> =
        map.get("Statement").map(as_list).unwrap_or_default().into_iter().cloned().collect();
    let taken = |sid: &str| statements.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(sid));
    let mut sid = "DenyInsecureTransport".to_owned();
    let mut n = 2;
    while taken(&sid) {
        sid = format!("DenyInsecureTransport{n}");
        n += 1;
    }
    statements.push(ssl_only_statement(bucket, &sid));
    map.insert("Statement".into(), Value::Array(statements));
    map.entry("Version").or_insert_with(|| json!("2012-10-17"));
    serde_json::to_string(&document).map_err(|e| e.to_string())
}

const SPECS: [CheckSpec; 5] = [
    CheckSpec {
        id: "aws.s3.public_access_block",
        title: "S3 buckets block public access",
        severity: Severity::High,
        resource_kind: "S3Bucket",
        rationale: "The four public access block settings stop ACLs and policies from making data public by mistake.",
        remediation: "Turn on all four settings of the bucket's public access block.",
        reference: "",
        remediable: true,
    },
    CheckSpec {
        id: "aws.s3.default_encryption",
        title: "S3 buckets encrypt objects by default",
        severity: Severity::Medium,
        resource_kind: "S3Bucket",
        rationale: "Default encryption protects every new object at rest, whoever uploads it.",
        remediation: "Set default encryption to SSE-S3 (AES256) or SSE-KMS with a customer-managed key.",
        reference: "",
        remediable: true,
    },
    CheckSpec {
        id: "aws.s3.versioning",
        title: "S3 buckets keep object versions",
        severity: Severity::Medium,
        resource_kind: "S3Bucket",
        rationale: "Versioning lets you recover objects that were overwritten or deleted, by mistake or by ransomware.",
        remediation: "Enable versioning (and a lifecycle rule for old versions).",
        reference: "",
        remediable: true,
    },
    CheckSpec {
        id: "aws.s3.ssl_only",
        title: "S3 buckets refuse requests without TLS",
        severity: Severity::Medium,
        resource_kind: "S3Bucket",
        rationale: "Without a policy that denies aws:SecureTransport false, clients may read and write over plain HTTP.",
        remediation: "Add a Deny statement for all principals and s3:* when aws:SecureTransport is false.",
        reference: "",
        remediable: true,
    },
    CheckSpec {
        id: "aws.s3.access_logging",
        title: "S3 buckets log access",
        severity: Severity::Low,
        resource_kind: "S3Bucket",
        rationale: "Access logs are the evidence of who read or changed data.",
        remediation: "Enable server access logging to a dedicated log bucket.",
        reference: "",
        remediable: false,
    },
];

static CHECKS: LazyLock<Vec<Check>> = LazyLock::new(|| SPECS.iter().filter_map(|s| s.to_check().ok()).collect());

/// The S3 checks.
pub fn checks() -> Vec<Check> {
    CHECKS.clone()
}

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

/// Judges every bucket of the account, in its own region.
#[derive(Clone)]
pub struct S3Collector {
    api: Arc<dyn BucketApi>,
    config: S3Config,
}

impl S3Collector {
    /// Through the SDK.
    #[cfg(feature = "s3")]
    pub fn new(sdk: &aws_config::SdkConfig, config: S3Config) -> Self {
        let api = Arc::new(SdkBuckets::new(sdk, config.force_path_style));
        Self::with_api(api, config)
    }

    /// Through any [`BucketApi`].
    pub fn with_api(api: Arc<dyn BucketApi>, config: S3Config) -> Self {
        Self { api, config }
    }
}

fn bucket_resource(bucket: &str, region: Option<&str>) -> ResourceRef {
    ResourceRef::new("aws", "S3Bucket", format!("arn:aws:s3:::{bucket}"), bucket)
        .with_account_region(None, region.map(str::to_owned))
}

/// Turns a read into a verdict: a denied call is an `error` naming the
/// permission; a bucket deleted meanwhile is not applicable.
fn read<T>(result: Result<T, ApiError>, judge: impl FnOnce(T) -> Verdict) -> Verdict {
    match result {
        Ok(value) => judge(value),
        Err(e) if e.is("NoSuchBucket") => {
            Verdict::new(Status::NotApplicable, "the bucket was deleted during the scan", json!({}))
        }
        Err(e) => Verdict::new(
            Status::Error,
            e.explain(),
            json!({ "operation": e.operation, "code": e.code, "http_status": e.status }),
        ),
    }
}

/// Judges one bucket with every check in `scope`.
pub async fn judge_bucket(api: &dyn BucketApi, bucket: &str, scope: &Scope) -> Vec<Evidence> {
    let now = Utc::now();
    let wanted: Vec<(usize, &Check)> = CHECKS.iter().enumerate().filter(|(_, c)| scope.wants(&c.id)).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let region = match api.bucket_region(bucket).await {
        Ok(r) => r,
        Err(e) => {
            let resource = Arc::new(bucket_resource(bucket, None));
            let v = read::<()>(Err(e), |_| Verdict::new(Status::Error, "", json!({})));
            return wanted
                .iter()
                .map(|(_, c)| {
                    Evidence::new(c, Arc::clone(&resource), v.status, v.message.clone())
                        .with_details(v.details.clone())
                        .observed_at(now)
                })
                .collect();
        }
    };
    let resource = Arc::new(bucket_resource(bucket, Some(&region)));
    let mut out = Vec::with_capacity(wanted.len());
    for (index, check) in wanted {
        let v = match index {
            0 => read(api.public_access_block(bucket, &region).await, |b| judge_public_access_block(b.as_ref())),
            1 => read(api.encryption(bucket, &region).await, |e| judge_encryption(e.as_ref())),
            2 => read(api.versioning(bucket, &region).await, |v| judge_versioning(&v)),
            3 => read(api.policy(bucket, &region).await, |p| judge_ssl_only(p.as_deref(), bucket)),
            _ => read(api.logging(bucket, &region).await, |l| judge_logging(l.as_ref())),
        };
        out.push(
            Evidence::new(check, Arc::clone(&resource), v.status, v.message).with_details(v.details).observed_at(now),
        );
    }
    out
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
        let buckets = self
            .api
            .list_buckets()
            .await
            .map_err(|e| Error::Collect { collector: "aws-s3".into(), reason: e.explain() })?;
        let api = self.api.as_ref();
        let mut per_bucket: Vec<(String, Vec<Evidence>)> = futures::stream::iter(buckets.iter().cloned())
            .map(|bucket| async move {
                let evidence = judge_bucket(api, &bucket, scope).await;
                (bucket, evidence)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        per_bucket.sort_by(|a, b| a.0.cmp(&b.0));
        let evidence: Vec<Evidence> = per_bucket.into_iter().flat_map(|(_, e)| e).collect();
        info!(buckets = buckets.len(), evidence = evidence.len(), "S3 buckets judged");
        Ok(evidence.into())
    }
}

/// Fixes S3 failures: public access block, default encryption, versioning,
/// SSL-only policy (merged into the existing policy). S3 has no server-side
/// dry run: the dry run reads the current state and shows the exact call and
/// the before and after; apply makes the call, then re-reads and re-judges.
#[derive(Clone)]
pub struct S3Remediator {
    api: Arc<dyn BucketApi>,
    config: S3Config,
}

impl S3Remediator {
    /// Through the SDK.
    #[cfg(feature = "s3")]
    pub fn new(sdk: &aws_config::SdkConfig, config: S3Config) -> Self {
        let api = Arc::new(SdkBuckets::new(sdk, config.force_path_style));
        Self::with_api(api, config)
    }

    /// Through any [`BucketApi`].
    pub fn with_api(api: Arc<dyn BucketApi>, config: S3Config) -> Self {
        Self { api, config }
    }

    fn failure(&self, reason: impl std::fmt::Display) -> Error {
        Error::Remediation { remediator: "aws-s3".into(), reason: reason.to_string() }
    }

    /// The change for one check on one bucket: (operation, before, after, risk, payload).
    async fn change(
        &self,
        check: &str,
        bucket: &str,
        region: &str,
    ) -> compliance_core::Result<Option<(Change, Risk, Value)>> {
        let explain = |e: ApiError| self.failure(e.explain());
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

const FIXES: [&str; 4] =
    ["aws.s3.public_access_block", "aws.s3.default_encryption", "aws.s3.versioning", "aws.s3.ssl_only"];

#[async_trait]
impl Remediator for S3Remediator {
    fn name(&self) -> &str {
        "aws-s3"
    }

    fn fixes(&self) -> Vec<CheckId> {
        FIXES.iter().filter_map(|id| id.parse().ok()).collect()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || !FIXES.contains(&evidence.check_id.as_str()) {
            return Ok(None);
        }
        let bucket = &evidence.resource.name;
        let region = match &evidence.resource.region {
            Some(r) => r.clone(),
            None => self.api.bucket_region(bucket).await.map_err(|e| self.failure(e.explain()))?,
        };
        let Some((change, risk, payload)) = self.change(evidence.check_id.as_str(), bucket, &region).await? else {
            return Ok(None);
        };
        let summary = format!("{} on bucket {bucket}", change.operation.split(' ').next().unwrap_or_default());
        Ok(Some(RemediationPlan::new(self.name(), evidence, summary, vec![change], risk, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        let bucket = plan.resource.name.clone();
        let region = match &plan.resource.region {
            Some(r) => r.clone(),
            None => self.api.bucket_region(&bucket).await.map_err(|e| self.failure(e.explain()))?,
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
        let explain = |e: ApiError| self.failure(e.explain());
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
                    _ => self.api.put_policy(&bucket, &region, payload.to_string()).await.map_err(explain)?,
                }
                true
            }
        };
        let verification = judge_bucket(self.api.as_ref(), &bucket, &Scope::only([check]))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_only_policies() {
        let good = serde_json::to_string(&json!({"Statement": [ssl_only_statement("b", "x")]})).unwrap_or_default();
        assert_eq!(judge_ssl_only(Some(&good), "b").status, Status::Pass);
        assert_eq!(judge_ssl_only(Some(&good), "other").status, Status::Fail, "must cover this bucket");
        assert_eq!(judge_ssl_only(None, "b").status, Status::Fail);
        assert_eq!(judge_ssl_only(Some("{not json"), "b").status, Status::Error);
        let only_objects = json!({"Statement": {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"aws:SecureTransport": false}}}});
        assert_eq!(
            judge_ssl_only(Some(&only_objects.to_string()), "b").status,
            Status::Fail,
            "the bucket itself is not covered"
        );
        let allow = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert_eq!(judge_ssl_only(Some(&allow.to_string()), "b").status, Status::Fail);
    }

    #[test]
    fn merging_keeps_statements_and_sids_unique() -> Result<(), String> {
        let existing = json!({"Version": "2012-10-17", "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
        let merged: Value =
            serde_json::from_str(&with_ssl_only(Some(&existing.to_string()), "b")?).map_err(|e| e.to_string())?;
        let statements = merged["Statement"].as_array().cloned().unwrap_or_default();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0], existing["Statement"][0]);
        assert_eq!(statements[1]["Sid"], "DenyInsecureTransport2");
        assert!(with_ssl_only(Some("[1]"), "b").is_err());
        Ok(())
    }

    #[test]
    fn missing_configurations_are_told_from_errors() {
        for code in [
            "NoSuchPublicAccessBlockConfiguration",
            "ServerSideEncryptionConfigurationNotFoundError",
            "NoSuchBucketPolicy",
        ] {
            assert!(is_missing_configuration(&ApiError::new("s3:x", Some(code), "", Some(404))), "{code}");
        }
        assert!(!is_missing_configuration(&ApiError::new("s3:x", Some("AccessDenied"), "", Some(403))));
    }

    #[tokio::test]
    async fn denied_calls_are_error_evidence_naming_the_permission() {
        let mut api = MockBucketApi::new();
        api.expect_bucket_region().returning(|_| Ok("eu-central-1".into()));
        api.expect_public_access_block().returning(|_, _| Ok(None));
        api.expect_encryption().returning(|_, _| {
            Ok(Some(Encryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some("alias/data".into()),
                bucket_key_enabled: Some(true),
            }))
        });
        api.expect_versioning()
            .returning(|_, _| Err(ApiError::new("s3:GetBucketVersioning", Some("NoSuchBucket"), "gone", Some(404))));
        api.expect_policy().returning(|_, _| {
            Err(ApiError::new("s3:GetBucketPolicy", Some("AccessDenied"), "Access Denied", Some(403)))
        });
        api.expect_logging()
            .returning(|_, _| Err(ApiError::new("s3:GetBucketLogging", Some("InternalError"), "boom", Some(500))));
        let evidence = judge_bucket(&api, "data", &Scope::all()).await;
        let statuses: Vec<(String, Status)> = evidence.iter().map(|e| (e.check_id.to_string(), e.status)).collect();
        assert_eq!(
            statuses,
            [
                ("aws.s3.public_access_block".to_owned(), Status::Fail),
                ("aws.s3.default_encryption".to_owned(), Status::Pass),
                ("aws.s3.versioning".to_owned(), Status::NotApplicable),
                ("aws.s3.ssl_only".to_owned(), Status::Error),
                ("aws.s3.access_logging".to_owned(), Status::Error),
            ]
        );
        assert_eq!(
            evidence[3].message,
            "access denied: the scanner needs the s3:GetBucketPolicy permission (Access Denied)"
        );
        assert_eq!(evidence[0].resource.region.as_deref(), Some("eu-central-1"));
    }
}
