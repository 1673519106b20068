//! Per-target results in every output: JSON (against the schema), Markdown,
//! HTML, CSV, Prometheus, and the delta between runs.

use std::sync::Arc;

use compliance_core::{
    Check, Control, Evidence, Framework, FrameworkDef, Gap, GapKind, ResourceRef, Run, Severity, Status, Target,
};
use compliance_report::{Format, Report};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

type Fleet = (Run, Vec<Arc<dyn Framework>>);

fn fleet_run(failing_in_eu: bool) -> Result<Fleet, Box<dyn std::error::Error>> {
    let check = Check::new("aws.s3.versioning", "Versioning", Severity::Medium, "AWS::S3::Bucket")?;
    let pods = Check::new("k8s.pod.run_as_non_root", "Non-root", Severity::High, "Pod")?;
    let framework: Arc<dyn Framework> = Arc::new(FrameworkDef::new(
        "soc2",
        "SOC 2",
        "2017",
        vec![Control::new("CC6.1", "Access", vec![check.id.clone(), pods.id.clone()])],
    ));
    let bucket = |account: &str, region: &str, name: &str| {
        ResourceRef::new("aws", "AWS::S3::Bucket", format!("arn:aws:s3:::{name}"), name)
            .with_account_region(Some(account.into()), Some(region.into()))
    };
    let evidence = vec![
        Evidence::new(&check, bucket("111111111111", "us-east-1", "a"), Status::Pass, "on"),
        Evidence::new(
            &check,
            bucket("111111111111", "eu-west-1", "b"),
            if failing_in_eu { Status::Fail } else { Status::Pass },
            "versioning",
        ),
        Evidence::new(&check, bucket("222222222222", "us-east-1", "c"), Status::Pass, "on"),
        Evidence::new(
            &pods,
            ResourceRef::new("k8s", "Pod", "shop/Pod/web", "web").with_cluster("prod"),
            Status::Fail,
            "root",
        ),
    ];
    let mut run = Run::from_evidence(vec![check, pods], evidence);
    run.targets = vec![
        Target::aws_account("111111111111").named("payments"),
        Target::aws_account("333333333333").named("refused"),
    ];
    run.gaps = vec![
        Gap::source("aws account 333333333333 (refused)", GapKind::Denied, "role cannot be assumed")
            .with_target("aws:333333333333"),
    ];
    Ok((run, vec![framework]))
}

#[test]
fn targets_are_scored_worst_first_in_every_output() -> TestResult {
    let (run, frameworks) = fleet_run(true)?;
    let report = Report::from_owned_run(run, &frameworks);
    let ids: Vec<&str> = report.targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "aws:111111111111",
            "aws:111111111111:eu-west-1",
            "k8s:prod",
            "aws:333333333333",
            "aws:111111111111:us-east-1",
            "aws:222222222222",
            "aws:222222222222:us-east-1"
        ]
    );
    let payments = &report.targets[0];
    assert_eq!((payments.name.as_deref(), payments.passed, payments.failed), (Some("payments"), 1, 1));
    assert_eq!(payments.scores.get("soc2"), Some(&0.0));
    assert_eq!(report.targets[5].scores.get("soc2"), Some(&100.0));
    let refused = &report.targets[3];
    assert_eq!((refused.gaps, refused.passed, refused.scores.len()), (1, 0, 0));

    let json: Value = serde_json::from_slice(&report.render(Format::Json)?)?;
    let schema: Value = serde_json::from_str(compliance_report::REPORT_SCHEMA)?;
    let validator = jsonschema::validator_for(&schema)?;
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(json["targets"][0]["kind"], "aws_account");
    assert_eq!(json["gaps"][0]["target"], "aws:333333333333");

    let markdown = String::from_utf8(report.render(Format::Markdown)?)?;
    let table = markdown.split("## Targets").nth(1).ok_or("no targets table")?;
    assert!(table.find("aws:111111111111").ok_or("payments")? < table.find("aws:222222222222").ok_or("other")?);
    assert!(table.contains("| `aws:333333333333` | refused | 0 | 0 | 0 | 0 | 1 | not assessed |"), "{table}");
    let html = String::from_utf8(report.render(Format::Html)?)?;
    assert!(html.contains("<h2>Targets</h2>") && html.contains("<td><code>k8s:prod</code></td>"));

    let csv = String::from_utf8(report.render(Format::Csv)?)?;
    let header = csv.lines().next().unwrap_or_default();
    assert!(header.contains(",account,region,") && header.ends_with(",cluster"), "{header}");
    assert!(csv.lines().any(|l| l.contains(",111111111111,eu-west-1,")));
    assert!(csv.lines().any(|l| l.ends_with(",prod")));

    let metrics = String::from_utf8(report.render(Format::Prometheus)?)?;
    assert!(
        metrics.contains(r#"compliance_target_evidence{account="111111111111",cluster="",status="fail"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"compliance_target_gaps{account="333333333333",cluster=""} 1"#));
    assert!(metrics.contains(r#"compliance_target_score_percentage{account="",cluster="prod",framework="soc2"} 0"#));
    assert!(!metrics.contains("eu-west-1"), "no region or resource label: the series stay few");
    Ok(())
}

#[test]
fn the_delta_is_per_target_too() -> TestResult {
    let (before, frameworks) = fleet_run(false)?;
    let (after, _) = fleet_run(true)?;
    let previous = Report::from_owned_run(before, &frameworks);
    let report = Report::from_owned_run(after, &frameworks).with_delta_from(&previous);
    let delta = report.delta.clone().ok_or("no delta")?;
    let keys: Vec<&str> = delta.by_target.keys().map(String::as_str).collect();
    assert_eq!(keys, ["aws:111111111111", "aws:111111111111:eu-west-1", "k8s:prod"]);
    assert_eq!(delta.by_target["aws:111111111111:eu-west-1"].new_failures, 1);
    assert_eq!(delta.by_target["k8s:prod"].still_failing, 1);

    // A run that did not reach a target (another shard's) does not call its failures resolved or gone.
    let (mut shard, _) = fleet_run(true)?;
    shard.evidence.retain(|e| e.resource.cluster.is_none());
    let later = Report::from_owned_run(shard, &frameworks).with_delta_from(&report);
    let delta = later.delta.ok_or("no delta")?;
    assert!(delta.no_longer_observed.is_empty(), "{:?}", delta.no_longer_observed);
    Ok(())
}
