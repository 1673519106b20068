//! AWS Config rule compliance.

use compliance_aws::config_rules::ConfigRulesCollector;
use compliance_core::testkit::check_collector;
use compliance_core::{Collector, GapKind, Scope, Status};
use serde_json::json;

use crate::{TestResult, moto, sdk};

async fn rule(config: &aws_sdk_config::Client, name: &str, identifier: &str) -> TestResult {
    use aws_sdk_config::types::{ConfigRule, Owner, Source};
    let source = Source::builder().owner(Owner::Aws).source_identifier(identifier).build()?;
    config
        .put_config_rule()
        .config_rule(ConfigRule::builder().config_rule_name(name).source(source).build())
        .send()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn every_page_of_every_rule_becomes_evidence() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "eu-west-1").await;
    let config = aws_sdk_config::Client::new(&sdk);
    let recorder = aws_sdk_config::types::ConfigurationRecorder::builder()
        .name("default")
        .role_arn("arn:aws:iam::123456789012:role/config")
        .build();
    config.put_configuration_recorder().configuration_recorder(recorder).send().await?;
    rule(&config, "s3-bucket-ssl-requests-only", "S3_BUCKET_SSL_REQUESTS_ONLY").await?;
    rule(&config, "s3-bucket-versioning-enabled", "S3_BUCKET_VERSIONING_ENABLED").await?;
    let types = ["COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA"];
    let results: Vec<_> = (0..250)
        .map(|i| json!({ "ResourceType": "AWS::S3::Bucket", "ResourceId": format!("bucket-{i:03}"), "ComplianceType": types[i % 4],
            "Annotation": if i % 4 == 1 { "Bucket policy allows HTTP" } else { "" } }))
        .collect();
    moto.put_config_evaluations(
        &json!({ "rule": "s3-bucket-ssl-requests-only", "region": "eu-west-1", "results": results }),
    )?;
    moto.put_config_evaluations(&json!({ "rule": "s3-bucket-versioning-enabled", "region": "eu-west-1",
        "results": [{ "ResourceType": "AWS::S3::Bucket", "ResourceId": "bucket-000", "ComplianceType": "COMPLIANT" }] }))?;
    moto.reset_calls()?;

    let collector = ConfigRulesCollector::discover(&sdk);
    assert!(collector.checks().is_empty(), "nothing is listed before the run collects");
    assert!(moto.calls()?.as_object().is_none_or(|c| c.is_empty()), "no call at construction");
    let collection = check_collector(&collector, &Scope::all()).await?;
    let ids: Vec<String> = collection.checks.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids, ["aws.config.s3-bucket-ssl-requests-only", "aws.config.s3-bucket-versioning-enabled"]);
    assert!(collection.gaps.is_empty(), "{:?}", collection.gaps);
    let ssl: Vec<_> = collection
        .evidence
        .iter()
        .filter(|e| e.check_id.as_str() == "aws.config.s3-bucket-ssl-requests-only")
        .collect();
    assert_eq!(ssl.len(), 250, "all three pages");
    let count = |s: Status| ssl.iter().filter(|e| e.status == s).count();
    assert_eq!(
        (count(Status::Pass), count(Status::Fail), count(Status::NotApplicable), count(Status::Error)),
        (63, 63, 62, 62)
    );
    let failing = ssl.iter().find(|e| e.status == Status::Fail).ok_or("no failure")?;
    assert_eq!(failing.message, "NON_COMPLIANT: Bucket policy allows HTTP");
    assert_eq!(failing.details["resource_id"], "bucket-001");
    assert!(failing.details["result_recorded_time"].is_string());
    assert_eq!(failing.resource.region.as_deref(), Some("eu-west-1"));
    let calls = moto.calls()?;
    assert_eq!(calls["config:GetComplianceDetailsByConfigRule"], 4, "3 pages + 1: {calls}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn an_unknown_rule_is_a_gap() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let collector = ConfigRulesCollector::new(&sdk, ["no-such-rule"])?;
    let collection = collector.collect(&Scope::all()).await?;
    assert!(collection.evidence.is_empty());
    assert_eq!(collection.gaps.len(), 1);
    assert_eq!(collection.gaps[0].kind, GapKind::Unreadable);
    assert!(collection.gaps[0].reason.contains("NoSuchConfigRuleException"), "{}", collection.gaps[0].reason);
    Ok(())
}
