//! AWS Config rule compliance.

use compliance_aws::config_rules::ConfigRulesCollector;
use compliance_core::testkit::check_collector;
use compliance_core::{Collector, GapKind, Scope, Status};
use serde_json::json;

use crate::{TestResult, config_rule as rule, moto, sdk};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn renamed_managed_rules_are_filed_under_their_identifier_and_land_on_its_controls() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "eu-west-1").await;
    let config = aws_sdk_config::Client::new(&sdk);
    // As Security Hub and a conformance pack name their copies, beside the original.
    rule(&config, "securityhub-s3-bucket-ssl-requests-only-7f3a2c", "S3_BUCKET_SSL_REQUESTS_ONLY").await?;
    rule(&config, "s3-bucket-ssl-requests-only-conformance-pack-q1w2e3", "S3_BUCKET_SSL_REQUESTS_ONLY").await?;
    rule(&config, "securityhub-iam-root-access-key-check-1a2b3c", "IAM_ROOT_ACCESS_KEY_CHECK").await?;
    let evaluations = [
        ("securityhub-s3-bucket-ssl-requests-only-7f3a2c", "logs", "COMPLIANT"),
        ("s3-bucket-ssl-requests-only-conformance-pack-q1w2e3", "logs", "NON_COMPLIANT"),
        ("securityhub-s3-bucket-ssl-requests-only-7f3a2c", "data", "COMPLIANT"),
        ("securityhub-iam-root-access-key-check-1a2b3c", "123456789012", "NON_COMPLIANT"),
    ];
    for (rule_name, resource, compliance) in evaluations {
        let kind = if resource.starts_with('1') { "AWS::::Account" } else { "AWS::S3::Bucket" };
        moto.put_config_evaluations(&json!({ "rule": rule_name, "region": "eu-west-1",
            "results": [{ "ResourceType": kind, "ResourceId": resource, "ComplianceType": compliance }] }))?;
    }
    let collection = ConfigRulesCollector::discover(&sdk).collect(&Scope::all()).await?;
    assert!(collection.gaps.is_empty(), "{:?}", collection.gaps);
    let ids: Vec<&str> = collection.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["aws.config.s3-bucket-ssl-requests-only", "aws.config.iam-root-access-key-check"]);
    let logs = collection.evidence.iter().find(|e| e.resource.name == "logs").ok_or("no evidence for logs")?;
    assert_eq!(logs.status, Status::Fail, "the worst of the two copies");
    assert_eq!(logs.details["source_identifier"], "S3_BUCKET_SSL_REQUESTS_ONLY");
    assert_eq!(logs.details["rules"].as_array().map(Vec::len), Some(2));

    // Every result of a mapped identifier lands on its controls in the built-in frameworks.
    let rules = compliance_report::aws_config_rules()?;
    let mut run = compliance_core::Run::from_evidence(collection.checks.clone(), collection.evidence.clone());
    run.gaps.clear();
    let report = compliance_report::Report::from_owned_run(run, &compliance_report::builtin_frameworks());
    for evidence in &collection.evidence {
        let mapping = rules.iter().find(|r| r.check == evidence.check_id).ok_or("an identifier the mapping lacks")?;
        for (framework, controls) in &mapping.controls {
            let result = report.frameworks.iter().find(|f| &f.id == framework).ok_or("framework missing")?;
            for control in controls {
                let c = result.controls.iter().find(|c| &c.id == control).ok_or("control missing")?;
                assert!(c.checks.contains(&evidence.check_id), "{framework} {control}");
            }
        }
    }
    Ok(())
}

#[test]
#[ignore = "needs moto server: scripts/test installs it"]
fn every_mapped_identifier_is_a_managed_rule_aws_publishes() -> TestResult {
    // moto validates PutConfigRule against AWS's list of managed rules (its aws_managed_rules.json,
    // generated from AWS's documentation): an independent list to check ours against.
    let python =
        compliance_test_support::moto::python_path().ok_or("moto is not installed: scripts/test installs it")?;
    let out = std::process::Command::new(python)
        .args(["-c", "import json, moto.config.models as m; print(json.dumps(sorted(m.MANAGED_RULES_CONSTRAINTS)))"])
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let known: std::collections::BTreeSet<String> = serde_json::from_slice(&out.stdout)?;
    assert!(known.len() > 300, "{} managed rules", known.len());
    let unknown: Vec<String> = compliance_report::aws_config_rules()?
        .into_iter()
        .map(|r| r.identifier)
        .filter(|i| !known.contains(i))
        .collect();
    assert!(unknown.is_empty(), "not AWS managed rules: {unknown:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn conformance_packs_are_read_page_by_page_and_their_controls_reach_the_report_and_the_store() -> TestResult {
    use std::sync::Arc;

    use compliance_core::Engine;

    let moto = moto()?;
    let sdk = sdk(&moto, "eu-west-1").await;
    let config = aws_sdk_config::Client::new(&sdk);
    // As AWS names a pack's rules; and one rule outside any pack.
    rule(&config, "iam-password-policy-conformance-pack-a1b2c3", "IAM_PASSWORD_POLICY").await?;
    rule(&config, "root-account-mfa-enabled-conformance-pack-d4e5f6", "ROOT_ACCOUNT_MFA_ENABLED").await?;
    rule(&config, "s3-bucket-versioning-enabled", "S3_BUCKET_VERSIONING_ENABLED").await?;
    let results = |kind: &str, ids: std::ops::Range<usize>, compliance: &str| -> Vec<serde_json::Value> {
        ids.map(|i| json!({ "ResourceType": kind, "ResourceId": format!("r-{i:03}"), "ComplianceType": compliance }))
            .collect()
    };
    moto.put_config_evaluations(
        &json!({ "rule": "iam-password-policy-conformance-pack-a1b2c3", "region": "eu-west-1",
        "results": [{ "ResourceType": "AWS::::Account", "ResourceId": "123456789012", "ComplianceType": "NON_COMPLIANT",
                      "Annotation": "MinimumPasswordLength is 8" }] }),
    )?;
    moto.put_config_evaluations(
        &json!({ "rule": "root-account-mfa-enabled-conformance-pack-d4e5f6", "region": "eu-west-1",
        "results": results("AWS::::Account", 0..7, "COMPLIANT") }),
    )?;
    moto.put_config_evaluations(&json!({ "rule": "s3-bucket-versioning-enabled", "region": "eu-west-1",
        "results": results("AWS::S3::Bucket", 0..3, "COMPLIANT") }))?;
    // Controls as a pack declares them: framework-qualified, bare, and one of the organisation's own.
    moto.put_conformance_pack(&json!({ "name": "pci-baseline", "region": "eu-west-1", "rules": [
        { "rule": "iam-password-policy-conformance-pack-a1b2c3", "controls": ["soc2:CC6.2", "ACME-PW-1"] },
        { "rule": "root-account-mfa-enabled-conformance-pack-d4e5f6", "controls": ["A.5.16"] } ] }))?;
    moto.put_conformance_pack(&json!({ "name": "empty-pack", "region": "eu-west-1", "rules": [] }))?;
    // Pages of one pack and of one rule: every page must be read.
    moto.page_sizes(&json!({ "DescribeConformancePacks": 1, "DescribeConformancePackCompliance": 1 }))?;
    moto.reset_calls()?;

    let engine = compliance_report::builtin_frameworks()
        .into_iter()
        .fold(Engine::new(), |e, f| e.with_framework(f))
        .with_collector(Arc::new(ConfigRulesCollector::discover(&sdk)));
    let run = engine.run(&Scope::all()).await;
    assert!(run.gaps.is_empty(), "{:?}", run.gaps);
    assert_eq!(run.evidence.len(), 1 + 7 + 3, "every result of every page");
    let calls = moto.calls()?;
    assert_eq!(calls["config:DescribeConformancePacks"], 2, "{calls}");
    assert_eq!(
        calls["config:DescribeConformancePackCompliance"],
        2 + 1,
        "two pages, and one for the empty pack: {calls}"
    );
    assert_eq!(calls["config:GetComplianceDetailsByConfigRule"], 3, "results are read per rule, pack or not: {calls}");

    let password = run
        .evidence
        .iter()
        .find(|e| e.check_id.as_str() == "aws.config.iam-password-policy")
        .ok_or("no password policy evidence")?;
    assert_eq!(password.status, Status::Fail);
    assert_eq!(password.message, "NON_COMPLIANT: MinimumPasswordLength is 8");
    assert_eq!(
        password.details["conformance_packs"],
        json!([{ "name": "pci-baseline", "compliance_type": "NON_COMPLIANT", "controls": ["soc2:CC6.2", "ACME-PW-1"] }])
    );
    let versioning = run.evidence.iter().find(|e| e.check_id.as_str() == "aws.config.s3-bucket-versioning-enabled");
    assert_eq!(versioning.map(|e| e.details["conformance_packs"].is_null()), Some(true));

    // The pack's controls land where the frameworks have them, beside the mapping file's.
    let report = compliance_report::Report::from_owned_run(run.clone(), engine.frameworks());
    let control = |framework: &str, id: &str| {
        report
            .frameworks
            .iter()
            .find(|f| f.id == framework)
            .and_then(|f| f.controls.iter().find(|c| c.id == id))
            .cloned()
    };
    // Neither is in the mapping file: they come from the pack alone.
    let soc2 = control("soc2", "CC6.2").ok_or("no SOC 2 CC6.2")?;
    assert!(soc2.checks.iter().any(|c| c.as_str() == "aws.config.iam-password-policy"));
    assert_eq!(soc2.failed, 1);
    let iso = control("iso27001", "A.5.16").ok_or("no ISO A.5.16")?;
    assert!(iso.checks.iter().any(|c| c.as_str() == "aws.config.root-account-mfa-enabled"));
    assert_eq!(iso.passed, 7);
    // Nothing is invented for a control no framework has.
    assert!(report.frameworks.iter().all(|f| f.controls.iter().all(|c| c.id != "ACME-PW-1")));
    // The stored run maps them the same way.
    let records = compliance_core::store::run_records(&run, engine.frameworks(), &[], "test");
    let stored =
        records.iter().find(|r| r.kind == compliance_core::store::RecordKind::Controls).ok_or("no controls record")?;
    let body: serde_json::Value = serde_json::from_str(&stored.body)?;
    assert!(
        body["frameworks"]["soc2"]["CC6.2"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "aws.config.iam-password-policy"))
    );
    // The frameworks themselves are not changed by a run.
    let unchanged = engine
        .frameworks()
        .iter()
        .find(|f| f.id() == "soc2")
        .and_then(|f| f.controls().iter().find(|c| c.id == "CC6.2"));
    assert!(unchanged.is_some_and(|c| !c.checks.iter().any(|c| c.as_str() == "aws.config.iam-password-policy")));
    Ok(())
}
