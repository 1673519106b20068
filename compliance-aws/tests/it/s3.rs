//! S3 bucket posture and the S3 remediator.

use std::sync::Arc;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus, CreateBucketConfiguration, LoggingEnabled,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use compliance_aws::iam::{IamCollector, IamConfig, IamRemediator};
use compliance_aws::s3::{S3Collector, S3Config, S3Remediator, ssl_only_statement};
use compliance_core::testkit::{check_collector, check_remediator};
use compliance_core::{ApproveAll, Collector, Engine, Mode, RejectAll, Remediator, Scope, Status};
use serde_json::{Value, json};

use crate::{TestResult, moto, sdk};

fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

async fn buckets_in_every_state(s3: &aws_sdk_s3::Client) -> TestResult {
    for b in ["secure", "bare", "partial", "allow-only", "logs"] {
        s3.create_bucket().bucket(b).send().await?;
    }
    let eu = CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::EuWest1).build();
    s3.create_bucket().bucket("in-ireland").create_bucket_configuration(eu).send().await?;

    let all_on = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block().bucket("secure").public_access_block_configuration(all_on).send().await?;
    let sse = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build()?,
                )
                .build(),
        )
        .build()?;
    s3.put_bucket_encryption().bucket("secure").server_side_encryption_configuration(sse).send().await?;
    s3.put_bucket_versioning()
        .bucket("secure")
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await?;
    let policy = json!({"Version": "2012-10-17", "Statement": [ssl_only_statement("secure", "TlsOnly")]});
    s3.put_bucket_policy().bucket("secure").policy(policy.to_string()).send().await?;
    // As on AWS, the log bucket must let the log-delivery group write.
    let log_delivery = "uri=http://acs.amazonaws.com/groups/s3/LogDelivery";
    s3.put_bucket_acl().bucket("logs").grant_write(log_delivery).grant_read_acp(log_delivery).send().await?;
    let logging = BucketLoggingStatus::builder()
        .logging_enabled(LoggingEnabled::builder().target_bucket("logs").target_prefix("secure/").build()?)
        .build();
    s3.put_bucket_logging().bucket("secure").bucket_logging_status(logging).send().await?;

    let half = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(false)
        .restrict_public_buckets(false)
        .build();
    s3.put_public_access_block().bucket("partial").public_access_block_configuration(half).send().await?;
    s3.put_bucket_versioning()
        .bucket("partial")
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await?;
    s3.put_bucket_versioning()
        .bucket("partial")
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build())
        .send()
        .await?;

    let allow = json!({"Version": "2012-10-17", "Statement": [{"Sid": "PartnerRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::allow-only/*"}]});
    s3.put_bucket_policy().bucket("allow-only").policy(allow.to_string()).send().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn buckets_in_every_state_are_judged_in_their_region() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    buckets_in_every_state(&client(&sdk)).await?;
    let collector = S3Collector::new(&sdk, S3Config::default().with_path_style(true).with_concurrency(3));
    let collection = check_collector(&collector, &Scope::all()).await?;
    let status = |bucket: &str, check: &str| {
        collection
            .evidence
            .iter()
            .find(|e| e.resource.name == bucket && e.check_id.as_str() == check)
            .map(|e| (e.status, e.message.clone()))
    };
    for check in [
        "aws.s3.public_access_block",
        "aws.s3.default_encryption",
        "aws.s3.versioning",
        "aws.s3.ssl_only",
        "aws.s3.access_logging",
    ] {
        assert_eq!(
            status("secure", check).map(|s| s.0),
            Some(Status::Pass),
            "secure {check}: {:?}",
            status("secure", check)
        );
        assert_eq!(status("bare", check).map(|s| s.0), Some(Status::Fail), "bare {check}");
    }
    assert_eq!(status("bare", "aws.s3.versioning").map(|s| s.1).as_deref(), Some("versioning was never enabled"));
    assert_eq!(status("partial", "aws.s3.versioning").map(|s| s.1).as_deref(), Some("versioning is Suspended"));
    assert_eq!(
        status("partial", "aws.s3.public_access_block").map(|s| s.1).as_deref(),
        Some("public access block settings off: BlockPublicPolicy, RestrictPublicBuckets")
    );
    assert_eq!(status("allow-only", "aws.s3.ssl_only").map(|s| s.0), Some(Status::Fail));
    let ireland =
        collection.evidence.iter().find(|e| e.resource.name == "in-ireland").ok_or("no evidence for in-ireland")?;
    assert_eq!(ireland.resource.region.as_deref(), Some("eu-west-1"));
    assert_eq!(ireland.resource.id, "arn:aws:s3:::in-ireland");
    assert_eq!(collection.evidence.len(), 6 * 6);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn the_s3_remediator_fixes_plans_and_keeps_existing_policy_statements() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let s3 = client(&sdk);
    buckets_in_every_state(&s3).await?;
    let config = S3Config::default().with_path_style(true);
    let collector = S3Collector::new(&sdk, config.clone());
    let remediator = S3Remediator::new(&sdk, config);

    // The plan states the exact call and the before and after; a dry run changes nothing.
    let evidence = collector.collect(&Scope::only(["aws.s3.ssl_only"])).await?;
    let allow_only = evidence.evidence.iter().find(|e| e.resource.name == "allow-only").ok_or("no evidence")?;
    let engine = Engine::new().with_remediator(Arc::new(remediator.clone()));
    let plan = engine.plan(allow_only).await?.ok_or("no plan")?;
    assert_eq!(plan.changes[0].operation, "s3:PutBucketPolicy --bucket allow-only");
    assert_eq!(plan.changes[0].before["Statement"][0]["Sid"], "PartnerRead");
    let dry = engine.apply(&plan, Mode::DryRun, &RejectAll).await?;
    assert!(!dry.applied);
    let policy: Value =
        serde_json::from_str(s3.get_bucket_policy().bucket("allow-only").send().await?.policy().unwrap_or_default())?;
    assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(1), "dry run changed nothing");
    let outcome = engine.apply(&plan, Mode::Apply, &RejectAll).await?;
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    let policy: Value =
        serde_json::from_str(s3.get_bucket_policy().bucket("allow-only").send().await?.policy().unwrap_or_default())?;
    let sids: Vec<&str> =
        policy["Statement"].as_array().into_iter().flatten().filter_map(|s| s["Sid"].as_str()).collect();
    assert_eq!(sids, ["PartnerRead", "DenyInsecureTransport"], "existing statements are kept");

    // The conformance suite on every fixable check, for every failing bucket.
    for check in ["aws.s3.public_access_block", "aws.s3.default_encryption", "aws.s3.versioning", "aws.s3.ssl_only"] {
        let fixed = check_remediator(&remediator, &collector, &Scope::only([check]), 10).await?;
        assert!(fixed >= 3, "{check}: {fixed}");
    }
    let after = collector.collect(&Scope::only(["aws.s3.versioning"])).await?;
    assert!(after.evidence.iter().all(|e| e.status == Status::Pass));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn remediation_refuses_evidence_of_another_account_or_of_none() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let s3 = client(&sdk);
    buckets_in_every_state(&s3).await?;
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.create_user().user_name("dormant").send().await?;
    iam.create_access_key().user_name("dormant").send().await?;
    moto.set_credential_report(&json!({ "users": { "dormant": {
        "access_key_1_last_used_date": "2020-01-01T00:00:00+00:00", "user_creation_time": "2019-01-01T00:00:00+00:00" } } }))?;
    let config = S3Config::default().with_path_style(true);
    let buckets = S3Collector::new(&sdk, config.clone()).collect(&Scope::only(["aws.s3.versioning"])).await?;
    let users = IamCollector::new(&sdk, IamConfig::default()).collect(&Scope::only(["aws.iam.user_inactive"])).await?;
    let bare = buckets.evidence.iter().find(|e| e.resource.name == "bare").ok_or("no evidence for bare")?;
    let dormant = users.evidence.iter().find(|e| e.resource.name == "dormant").ok_or("no evidence for dormant")?;
    // moto's account, learned with sts:GetCallerIdentity (S3) and read from the report's ARNs (IAM).
    assert_eq!(bare.resource.account.as_deref(), Some("123456789012"));
    assert_eq!(dormant.resource.account.as_deref(), Some("123456789012"));
    let s3_fix: Arc<dyn Remediator> = Arc::new(S3Remediator::new(&sdk, config));
    let iam_fix: Arc<dyn Remediator> = Arc::new(IamRemediator::new(&sdk));

    for (remediator, evidence) in [(&s3_fix, bare), (&iam_fix, dormant)] {
        let engine = Engine::new().with_remediator(remediator.clone());
        for other in [Some("111122223333"), None] {
            let mut resource = (*evidence.resource).clone();
            resource.account = other.map(str::to_owned);
            let mut moved = evidence.clone();
            moved.resource = Arc::new(resource.clone());
            let refused = engine.plan(&moved).await.err().ok_or("a plan for another account")?.to_string();
            assert!(refused.contains("these credentials are for account 123456789012: refused"), "{refused}");
            assert!(refused.contains(other.unwrap_or("none named")), "{refused}");

            // A plan made here and then edited to name another account is refused at apply too.
            let mut plan = engine.plan(evidence).await?.ok_or("no plan")?;
            plan.resource = resource;
            let refused = engine
                .apply(&plan, Mode::Apply, &ApproveAll { by: "test".into() })
                .await
                .err()
                .ok_or("applied to another account")?;
            assert!(refused.to_string().contains("refused"), "{refused}");
        }
    }
    // Nothing changed.
    assert!(s3.get_bucket_versioning().bucket("bare").send().await?.status().is_none());
    let keys = iam.list_access_keys().user_name("dormant").send().await?;
    assert!(keys.access_key_metadata().iter().all(|k| k.status().map(|s| s.as_str()) == Some("Active")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn intermittent_500s_and_429s_are_retried_and_persistent_ones_are_named_gaps() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    buckets_in_every_state(&client(&sdk)).await?;
    // One bucket at a time: with several, one call's retries could all land on faulted turns.
    let collector = S3Collector::new(&sdk, S3Config::default().with_path_style(true).with_concurrency(1));
    let clean = collector.collect(&Scope::all()).await?;

    // Every 3rd S3 call fails (500, then 429 with a delay): the SDK's retries absorb them.
    for faults in [
        json!({"every": 3, "status": 500, "services": ["s3"]}),
        json!({"every": 3, "status": 429, "delay_ms": 50, "services": ["s3"]}),
    ] {
        moto.faults(&faults)?;
        let collection = collector.collect(&Scope::all()).await?;
        assert!(moto.faults_injected()? > 5, "faults were injected: {faults}");
        assert!(collection.gaps.is_empty(), "{faults}: {:?}", collection.gaps);
        let errors: Vec<_> = collection.evidence.iter().filter(|e| e.status == Status::Error).collect();
        assert!(errors.is_empty(), "{faults}: retried calls leave no error evidence: {errors:?}");
        assert_eq!(collection.evidence.len(), clean.evidence.len(), "{faults}: nothing lost");
    }

    // Every S3 call throttled: nothing is judged, and each failure says why; never a pass.
    moto.faults(&json!({"every": 1, "status": 429, "services": ["s3"]}))?;
    let collection = collector.collect(&Scope::all()).await;
    moto.faults(&json!({"every": 0}))?;
    match collection {
        Err(e) => assert!(e.to_string().contains("Throttling"), "{e}"),
        Ok(c) => {
            assert!(c.evidence.iter().all(|e| e.status == Status::Error), "no pass or fail from a throttled API");
            let named = c.gaps.iter().map(|g| g.reason.as_str()).chain(c.evidence.iter().map(|e| e.message.as_str()));
            assert!(
                named.clone().any(|r| r.contains("Throttling")),
                "the cause is named: {:?}",
                named.collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
