//! The S3 checks: judges over a [`BucketState`], the bucket-policy logic
//! they share with the remediator, and the catalogue.

use std::sync::LazyLock;

use compliance_core::{Catalogue, Check, CheckDef, CheckSpec, Severity, Status, Verdict};
use serde_json::{Value, json};

use super::model::{BucketState, Encryption, Logging, PublicAccessBlock, Versioning};

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
            let off = b.off();
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

/// `aws.s3.mfa_delete`: deleting versions needs MFA.
pub fn judge_mfa_delete(v: &Versioning) -> Verdict {
    let details = json!({ "status": v.status, "mfa_delete": v.mfa_delete });
    match v.mfa_delete.as_deref() {
        Some("Enabled") => Verdict::new(Status::Pass, "MFA Delete is enabled", details),
        Some(other) => Verdict::new(Status::Fail, format!("MFA Delete is {other}"), details),
        None => Verdict::new(Status::Fail, "MFA Delete was never enabled", details),
    }
}

fn public_access_block(b: &BucketState, _: &()) -> Option<Verdict> {
    Some(b.public_access_block.judge(|v| judge_public_access_block(v.as_ref())))
}

fn default_encryption(b: &BucketState, _: &()) -> Option<Verdict> {
    Some(b.encryption.judge(|v| judge_encryption(v.as_ref())))
}

fn versioning(b: &BucketState, _: &()) -> Option<Verdict> {
    Some(b.versioning.judge(judge_versioning))
}

fn ssl_only(b: &BucketState, _: &()) -> Option<Verdict> {
    Some(b.policy.judge(|p| judge_ssl_only(p.as_deref(), &b.name)))
}

fn access_logging(b: &BucketState, _: &()) -> Option<Verdict> {
    Some(b.logging.judge(|v| judge_logging(v.as_ref())))
}

fn mfa_delete(b: &BucketState, _: &()) -> Option<Verdict> {
    Some(b.versioning.judge(judge_mfa_delete))
}

/// Every S3 check.
pub(super) static DEFS: &[CheckDef<BucketState, ()>] = &[
    CheckDef {
        spec: CheckSpec {
            id: "aws.s3.public_access_block",
            title: "S3 buckets block public access",
            severity: Severity::High,
            resource_kind: "S3Bucket",
            rationale: "The four public access block settings stop ACLs and policies from making data public by mistake.",
            remediation: "Turn on all four settings of the bucket's public access block.",
            reference: "",
            remediable: true,
        },
        judge: public_access_block,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.s3.default_encryption",
            title: "S3 buckets encrypt objects by default",
            severity: Severity::Medium,
            resource_kind: "S3Bucket",
            rationale: "Default encryption protects every new object at rest, whoever uploads it.",
            remediation: "Set default encryption to SSE-S3 (AES256) or SSE-KMS with a customer-managed key.",
            reference: "",
            remediable: true,
        },
        judge: default_encryption,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.s3.versioning",
            title: "S3 buckets keep object versions",
            severity: Severity::Medium,
            resource_kind: "S3Bucket",
            rationale: "Versioning lets you recover objects that were overwritten or deleted, by mistake or by ransomware.",
            remediation: "Enable versioning (and a lifecycle rule for old versions).",
            reference: "",
            remediable: true,
        },
        judge: versioning,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.s3.ssl_only",
            title: "S3 buckets refuse requests without TLS",
            severity: Severity::Medium,
            resource_kind: "S3Bucket",
            rationale: "Without a policy that denies aws:SecureTransport false, clients may read and write over plain HTTP.",
            remediation: "Add a Deny statement for all principals and s3:* when aws:SecureTransport is false.",
            reference: "",
            remediable: true,
        },
        judge: ssl_only,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.s3.access_logging",
            title: "S3 buckets log access",
            severity: Severity::Low,
            resource_kind: "S3Bucket",
            rationale: "Access logs are the evidence of who read or changed data.",
            remediation: "Enable server access logging to a dedicated log bucket.",
            reference: "",
            remediable: false,
        },
        judge: access_logging,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.s3.mfa_delete",
            title: "Deleting S3 object versions needs MFA",
            severity: Severity::Low,
            resource_kind: "S3Bucket",
            rationale: "With MFA Delete, stolen access keys alone cannot remove object versions or suspend versioning.",
            remediation: "As the root user with an MFA device, enable MFA Delete in the bucket's versioning configuration.",
            reference: "CIS AWS Foundations Benchmark: MFA Delete on S3 buckets",
            remediable: false,
        },
        judge: mfa_delete,
    },
];

static CATALOGUE: LazyLock<Catalogue<BucketState, ()>> = LazyLock::new(|| Catalogue::new(DEFS));

/// The S3 catalogue: one for live buckets and Terraform alike.
pub fn catalogue() -> &'static Catalogue<BucketState, ()> {
    &CATALOGUE
}

/// The S3 checks.
pub fn checks() -> Vec<Check> {
    CATALOGUE.checks()
}
