//! CloudTrail, the audit log auditors always ask for (SOC 2 CC7.2, ISO 27001
//! A.8.15, PCI DSS requirement 10):
//!
//! - `aws.cloudtrail.multi_region_trail`, once per account: at least one
//!   multi-region trail is logging;
//! - per trail: `aws.cloudtrail.trail_logging`,
//!   `aws.cloudtrail.log_file_validation`, `aws.cloudtrail.kms_encryption`,
//!   and `aws.cloudtrail.bucket_not_public` (the log bucket blocks public
//!   access with all four settings).

use std::sync::LazyLock;

use compliance_core::{Catalogue, CheckDef, CheckSpec, Severity, Status, Verdict};
use serde_json::json;

use crate::s3::PublicAccessBlock;

mod api;
mod collector;
mod remediator;

pub use api::{SdkTrails, TrailApi};
pub use collector::CloudTrailCollector;
pub use remediator::LogFileValidationRemediator;

/// One trail and what the checks read of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trail {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The region it was created in.
    pub home_region: String,
    /// `IsMultiRegionTrail`.
    pub multi_region: bool,
    /// `GetTrailStatus.IsLogging`; `Err` when the status could not be read.
    pub logging: Result<bool, String>,
    /// `LogFileValidationEnabled`.
    pub log_file_validation: bool,
    /// `KmsKeyId`.
    pub kms_key: Option<String>,
    /// `S3BucketName`.
    pub bucket: Option<String>,
    /// The bucket's public access block; `Err` when it could not be read.
    pub bucket_block: Result<Option<PublicAccessBlock>, String>,
}

fn unread(what: &str, reason: &str) -> Verdict {
    Verdict::new(Status::Error, format!("{what} could not be read: {reason}"), json!({ "reason": reason }))
}

fn trail_logging(t: &Trail, _: &()) -> Option<Verdict> {
    Some(match &t.logging {
        Ok(true) => Verdict::new(Status::Pass, "logging", json!({ "is_logging": true })),
        Ok(false) => Verdict::new(Status::Fail, "the trail is not logging", json!({ "is_logging": false })),
        Err(e) => unread("its status", e),
    })
}

fn log_file_validation(t: &Trail, _: &()) -> Option<Verdict> {
    let details = json!({ "log_file_validation_enabled": t.log_file_validation });
    Some(if t.log_file_validation {
        Verdict::new(Status::Pass, "log file validation is on", details)
    } else {
        Verdict::new(Status::Fail, "log file validation is off: changed or deleted log files go unnoticed", details)
    })
}

fn kms_encryption(t: &Trail, _: &()) -> Option<Verdict> {
    Some(match &t.kms_key {
        Some(key) => Verdict::new(Status::Pass, format!("encrypted with {key}"), json!({ "kms_key_id": key })),
        None => Verdict::new(
            Status::Fail,
            "log files are not encrypted with a KMS key (SSE-S3 only)",
            json!({ "kms_key_id": null }),
        ),
    })
}

fn bucket_not_public(t: &Trail, _: &()) -> Option<Verdict> {
    let bucket = t.bucket.as_deref().unwrap_or("(none)");
    Some(match &t.bucket_block {
        Ok(Some(block)) if *block == PublicAccessBlock::ALL_ON => Verdict::new(
            Status::Pass,
            format!("bucket {bucket} blocks public access"),
            json!({ "bucket": bucket, "public_access_block": block }),
        ),
        Ok(block) => Verdict::new(
            Status::Fail,
            format!("bucket {bucket} does not block public access with all four settings"),
            json!({ "bucket": bucket, "public_access_block": block }),
        ),
        Err(e) => unread(&format!("bucket {bucket}'s public access block"), e),
    })
}

pub(crate) const TRAIL_KIND: &str = "AWS::CloudTrail::Trail";

static TRAIL_DEFS: &[CheckDef<Trail, ()>] = &[
    CheckDef {
        spec: CheckSpec {
            id: "aws.cloudtrail.trail_logging",
            title: "CloudTrail trails are logging",
            severity: Severity::High,
            resource_kind: TRAIL_KIND,
            rationale: "A stopped trail records nothing: API activity in the account goes unlogged.",
            remediation: "Start logging on the trail (cloudtrail:StartLogging).",
            reference: "PCI DSS v4.0 10.2.1",
            remediable: false,
        },
        judge: trail_logging,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.cloudtrail.log_file_validation",
            title: "CloudTrail log file validation is on",
            severity: Severity::Medium,
            resource_kind: TRAIL_KIND,
            rationale: "Digest files prove the logs were not changed or deleted after delivery.",
            remediation: "Enable log file validation on the trail (cloudtrail:UpdateTrail --enable-log-file-validation).",
            reference: "PCI DSS v4.0 10.3.2; CIS AWS Foundations 3.2",
            remediable: true,
        },
        judge: log_file_validation,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.cloudtrail.kms_encryption",
            title: "CloudTrail log files are encrypted with a KMS key",
            severity: Severity::Medium,
            resource_kind: TRAIL_KIND,
            rationale: "A KMS key adds a second permission, and its own audit trail, to reading the logs.",
            remediation: "Set a KMS key on the trail whose policy lets CloudTrail encrypt and only log readers decrypt.",
            reference: "CIS AWS Foundations 3.5",
            remediable: false,
        },
        judge: kms_encryption,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.cloudtrail.bucket_not_public",
            title: "The bucket CloudTrail delivers to is not public",
            severity: Severity::High,
            resource_kind: TRAIL_KIND,
            rationale: "Audit logs reveal the account's resources and activity; a public bucket hands them out.",
            remediation: "Turn on all four public access block settings on the log bucket.",
            reference: "PCI DSS v4.0 10.3.1; CIS AWS Foundations 3.3",
            remediable: false,
        },
        judge: bucket_not_public,
    },
];

pub(crate) static TRAILS: LazyLock<Catalogue<Trail, ()>> = LazyLock::new(|| Catalogue::new(TRAIL_DEFS));

/// The per-trail catalogue.
pub fn trail_catalogue() -> &'static Catalogue<Trail, ()> {
    &TRAILS
}

fn multi_region_trail(trails: &[Trail], _: &()) -> Option<Verdict> {
    let good: Vec<&str> =
        trails.iter().filter(|t| t.multi_region && t.logging == Ok(true)).map(|t| t.name.as_str()).collect();
    let details = json!({ "trails": trails.iter().map(|t| json!({ "name": t.name, "multi_region": t.multi_region, "logging": t.logging.as_ref().ok() })).collect::<Vec<_>>() });
    Some(if good.is_empty() {
        Verdict::new(
            Status::Fail,
            "no multi-region trail is logging: activity in some regions goes unrecorded",
            details,
        )
    } else {
        Verdict::new(Status::Pass, format!("multi-region trail(s) logging: {}", good.join(", ")), details)
    })
}

static ACCOUNT_DEFS: &[CheckDef<[Trail], ()>] = &[CheckDef {
    spec: CheckSpec {
        id: "aws.cloudtrail.multi_region_trail",
        title: "A multi-region CloudTrail trail is logging",
        severity: Severity::High,
        resource_kind: "AWSAccount",
        rationale: "Only a multi-region trail records API activity in every region, including regions nobody uses yet.",
        remediation: "Create a multi-region trail delivering to a private bucket, with log file validation and KMS encryption, and start logging.",
        reference: "PCI DSS v4.0 10.2.1; CIS AWS Foundations 3.1",
        remediable: false,
    },
    judge: multi_region_trail,
}];

pub(crate) static ACCOUNT: LazyLock<Catalogue<[Trail], ()>> = LazyLock::new(|| Catalogue::new(ACCOUNT_DEFS));

/// The account-level catalogue.
pub fn account_catalogue() -> &'static Catalogue<[Trail], ()> {
    &ACCOUNT
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use compliance_core::{Collector, Scope};

    use super::api::MockTrailApi;
    use super::*;
    use crate::api::ApiError;

    fn good() -> Trail {
        Trail {
            name: "main".into(),
            arn: "arn:aws:cloudtrail:eu-west-1:123456789012:trail/main".into(),
            home_region: "eu-west-1".into(),
            multi_region: true,
            logging: Ok(true),
            log_file_validation: true,
            kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/k".into()),
            bucket: Some("logs".into()),
            bucket_block: Ok(Some(PublicAccessBlock::ALL_ON)),
        }
    }

    #[tokio::test]
    async fn a_denied_trail_listing_is_the_collectors_gap_naming_the_permission() {
        let mut api = MockTrailApi::new();
        api.expect_trails().returning(|| {
            Err(ApiError::new("cloudtrail:DescribeTrails", Some("AccessDeniedException"), "no", Some(400)))
        });
        let buckets = Arc::new(crate::s3::MockBucketApi::new());
        let result = CloudTrailCollector::with_api(Arc::new(api), buckets).collect(&Scope::all()).await;
        assert!(
            result
                .err()
                .is_some_and(|e| e.is_permission_denied() && e.to_string().contains("cloudtrail:DescribeTrails"))
        );
    }

    #[test]
    fn catalogues_are_well_formed() {
        assert!(trail_catalogue().problems().is_empty() && account_catalogue().problems().is_empty());
    }

    #[test]
    fn each_check_fails_on_its_own_setting_and_an_unread_one_is_an_error() {
        let status = |t: &Trail, f: fn(&Trail, &()) -> Option<Verdict>| f(t, &()).map(|v| v.status);
        let t = good();
        for f in [trail_logging, log_file_validation, kms_encryption, bucket_not_public] {
            assert_eq!(status(&t, f), Some(Status::Pass));
        }
        assert_eq!(status(&Trail { logging: Ok(false), ..good() }, trail_logging), Some(Status::Fail));
        assert_eq!(status(&Trail { logging: Err("denied".into()), ..good() }, trail_logging), Some(Status::Error));
        assert_eq!(status(&Trail { log_file_validation: false, ..good() }, log_file_validation), Some(Status::Fail));
        assert_eq!(status(&Trail { kms_key: None, ..good() }, kms_encryption), Some(Status::Fail));
        assert_eq!(status(&Trail { bucket_block: Ok(None), ..good() }, bucket_not_public), Some(Status::Fail));
        assert_eq!(
            status(&Trail { bucket_block: Err("denied".into()), ..good() }, bucket_not_public),
            Some(Status::Error)
        );
        let single = Trail { multi_region: false, ..good() };
        assert_eq!(multi_region_trail(&[single], &()).map(|v| v.status), Some(Status::Fail));
        assert_eq!(multi_region_trail(&[], &()).map(|v| v.status), Some(Status::Fail));
        assert_eq!(multi_region_trail(&[good()], &()).map(|v| v.status), Some(Status::Pass));
    }
}
