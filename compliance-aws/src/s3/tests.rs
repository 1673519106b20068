//! Unit tests of the S3 judges, policy merging and error mapping.

use compliance_core::{Scope, Status};
use serde_json::{Value, json};

use super::*;
use crate::api::ApiError;

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
    for code in
        ["NoSuchPublicAccessBlockConfiguration", "ServerSideEncryptionConfigurationNotFoundError", "NoSuchBucketPolicy"]
    {
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
    api.expect_policy()
        .returning(|_, _| Err(ApiError::new("s3:GetBucketPolicy", Some("AccessDenied"), "Access Denied", Some(403))));
    api.expect_logging()
        .returning(|_, _| Err(ApiError::new("s3:GetBucketLogging", Some("InternalError"), "boom", Some(500))));
    let evidence = judge_bucket(&api, "data", None, &Scope::all()).await;
    let statuses: Vec<(String, Status)> = evidence.iter().map(|e| (e.check_id.to_string(), e.status)).collect();
    assert_eq!(
        statuses,
        [
            ("aws.s3.public_access_block".to_owned(), Status::Fail),
            ("aws.s3.default_encryption".to_owned(), Status::Pass),
            ("aws.s3.versioning".to_owned(), Status::NotApplicable),
            ("aws.s3.ssl_only".to_owned(), Status::Error),
            ("aws.s3.access_logging".to_owned(), Status::Error),
            ("aws.s3.mfa_delete".to_owned(), Status::NotApplicable),
        ]
    );
    assert_eq!(
        evidence[3].message,
        "access denied: the scanner needs the s3:GetBucketPolicy permission (Access Denied)"
    );
    assert_eq!(evidence[0].resource.region.as_deref(), Some("eu-central-1"));
}

#[test]
fn mfa_delete_reads_the_versioning_configuration() {
    let versioning = |status: Option<&str>, mfa: Option<&str>| Versioning {
        status: status.map(str::to_owned),
        mfa_delete: mfa.map(str::to_owned),
    };
    assert_eq!(judge_mfa_delete(&versioning(Some("Enabled"), Some("Enabled"))).status, Status::Pass);
    assert_eq!(judge_mfa_delete(&versioning(Some("Enabled"), Some("Disabled"))).status, Status::Fail);
    assert_eq!(judge_mfa_delete(&versioning(None, None)).status, Status::Fail);
    // Through the catalogue, on a bucket state as any source builds it.
    let mut state = BucketState::unconfigured("logs");
    state.versioning = Setting::Read(versioning(Some("Enabled"), Some("Enabled")));
    let r = compliance_core::ResourceRef::new("aws", "S3Bucket", "arn:aws:s3:::logs", "logs");
    let evidence = catalogue().judge(&state, &(), r, &Scope::only(["aws.s3.mfa_delete"]), chrono::Utc::now());
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].status, Status::Pass);
}

/// The catalogue's `remediable` flags and the remediator agree: on a bucket
/// with nothing configured, it plans a fix for exactly the fixable checks.
#[tokio::test]
async fn the_catalogue_and_the_remediator_agree_on_what_is_fixable() -> Result<(), compliance_core::Error> {
    use compliance_core::{Evidence, Remediator};
    let mut api = MockBucketApi::new();
    api.expect_public_access_block().returning(|_, _| Ok(None));
    api.expect_encryption().returning(|_, _| Ok(None));
    api.expect_versioning().returning(|_, _| Ok(Versioning::default()));
    api.expect_policy().returning(|_, _| Ok(None));
    api.expect_logging().returning(|_, _| Ok(None));
    let remediator = S3Remediator::with_api(std::sync::Arc::new(api), S3Config::default());
    assert_eq!(remediator.fixes(), catalogue().remediable());
    let bucket = compliance_core::ResourceRef::new("aws", "S3Bucket", "arn:aws:s3:::b", "b")
        .with_account_region(None, Some("eu-west-1".into()));
    for entry in catalogue().entries() {
        let failing = Evidence::new(entry.check(), bucket.clone(), Status::Fail, "fails");
        let planned = remediator.plan(&failing).await?.is_some();
        assert_eq!(planned, entry.check().remediable, "{}", entry.check().id);
    }
    Ok(())
}

#[test]
fn the_catalogue_has_no_malformed_or_repeated_id() {
    assert!(catalogue().problems().is_empty(), "{:?}", catalogue().problems());
    assert_eq!(catalogue().entries().len(), 6);
}
