//! CloudTrail against moto.

use aws_sdk_s3::types::PublicAccessBlockConfiguration;
use compliance_aws::cloudtrail::CloudTrailCollector;
use compliance_core::testkit::check_collector;
use compliance_core::{Scope, Status};

use crate::{TestResult, moto, sdk};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn trails_are_judged_one_by_one_and_the_account_needs_a_logging_multi_region_trail() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let trails = aws_sdk_cloudtrail::Client::new(&sdk);
    let collector = CloudTrailCollector::new(&sdk, true);

    // No trail at all.
    let none = check_collector(&collector, &Scope::all()).await?;
    assert_eq!(none.evidence.len(), 1);
    assert_eq!(none.evidence[0].status, Status::Fail);
    assert_eq!(none.evidence[0].resource.account.as_deref(), Some("123456789012"));

    for bucket in ["private-logs", "open-logs"] {
        s3.create_bucket().bucket(bucket).send().await?;
    }
    let all_on = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block().bucket("private-logs").public_access_block_configuration(all_on).send().await?;
    trails
        .create_trail()
        .name("org")
        .s3_bucket_name("private-logs")
        .is_multi_region_trail(true)
        .enable_log_file_validation(true)
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        .send()
        .await?;
    trails.create_trail().name("legacy").s3_bucket_name("open-logs").send().await?;

    // Created but not started: nothing logs.
    let stopped = check_collector(&collector, &Scope::all()).await?;
    let status = |c: &compliance_core::Collection, check: &str, name: &str| {
        c.evidence.iter().find(|e| e.check_id.as_str() == check && e.resource.name == name).map(|e| e.status)
    };
    assert_eq!(status(&stopped, "aws.cloudtrail.multi_region_trail", "<account trails>"), Some(Status::Fail));
    assert_eq!(status(&stopped, "aws.cloudtrail.trail_logging", "org"), Some(Status::Fail));

    trails.start_logging().name("org").send().await?;
    let c = check_collector(&collector, &Scope::all()).await?;
    assert_eq!(status(&c, "aws.cloudtrail.multi_region_trail", "<account trails>"), Some(Status::Pass));
    for check in ["trail_logging", "log_file_validation", "kms_encryption", "bucket_not_public"] {
        assert_eq!(status(&c, &format!("aws.cloudtrail.{check}"), "org"), Some(Status::Pass), "org {check}");
    }
    for check in ["trail_logging", "log_file_validation", "kms_encryption", "bucket_not_public"] {
        assert_eq!(status(&c, &format!("aws.cloudtrail.{check}"), "legacy"), Some(Status::Fail), "legacy {check}");
    }
    assert_eq!(c.evidence.len(), 1 + 2 * 4, "each trail once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn log_file_validation_is_turned_on_in_the_trails_home_region_and_verified() -> TestResult {
    use std::sync::Arc;

    use compliance_aws::cloudtrail::LogFileValidationRemediator;
    use compliance_core::{ApproveAll, Engine, Mode, RejectAll};

    let moto = moto()?;
    // The trail lives in eu-west-1; the scan and the fix run from us-east-1.
    let home = sdk(&moto, "eu-west-1").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&home).force_path_style(true).build());
    s3.create_bucket()
        .bucket("eu-logs")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await?;
    let trails = aws_sdk_cloudtrail::Client::new(&home);
    trails.create_trail().name("eu-audit").s3_bucket_name("eu-logs").is_multi_region_trail(true).send().await?;
    let validation = || async {
        let out = trails.describe_trails().trail_name_list("eu-audit").send().await?;
        Ok::<_, Box<dyn std::error::Error>>(out.trail_list().first().and_then(|t| t.log_file_validation_enabled()))
    };
    assert_eq!(validation().await?, Some(false));

    let sdk = sdk(&moto, "us-east-1").await;
    let scope = Scope::only(["aws.cloudtrail.log_file_validation"]);
    let found = check_collector(&CloudTrailCollector::new(&sdk, true), &scope).await?;
    let evidence = found.evidence.first().ok_or("no evidence")?;
    assert_eq!((evidence.status, evidence.resource.region.as_deref()), (Status::Fail, Some("eu-west-1")));

    let engine = Engine::new().with_remediator(Arc::new(LogFileValidationRemediator::new(&sdk)));
    let plan = engine.plan(evidence).await?.ok_or("no plan")?;
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].target, "trail.eu-audit.log_file_validation_enabled");
    let dry = engine.apply(&plan, Mode::DryRun, &RejectAll).await?;
    assert!(!dry.applied);
    assert_eq!(validation().await?, Some(false), "a dry run changes nothing");

    let outcome = engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    assert_eq!(validation().await?, Some(true));
    assert!(outcome.record["restore"].as_str().is_some_and(|r| r.contains("--no-enable-log-file-validation")));
    // Scanned again, the trail passes; a second apply changes nothing.
    let again = check_collector(&CloudTrailCollector::new(&sdk, true), &scope).await?;
    assert_eq!(again.evidence.first().map(|e| e.status), Some(Status::Pass));
    assert!(!engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await?.applied);
    Ok(())
}
