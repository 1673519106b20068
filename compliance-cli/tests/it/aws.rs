//! AWS: a scan and remediation against moto, and the missing-region usage error.

use serde_json::json;

use crate::support::{TestResult, compliance, compliance_with, report_in, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn aws_scan_and_remediation_against_moto() -> TestResult {
    let moto = compliance_test_support::moto::Moto::start()?;
    let endpoint = moto.endpoint();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    for user in ["dormant", "fresh"] {
        iam.create_user().user_name(user).send().await?;
        iam.create_login_profile().user_name(user).password("Pa55word!x").send().await?;
    }
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(200)).to_rfc3339();
    moto.set_credential_report(
        &json!({ "users": { "dormant": { "password_last_used": long_ago, "user_creation_time": long_ago } } }),
    )?;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket("open-data").send().await?;

    let dir = tempfile::tempdir()?;
    let out = dir.path().to_str().ok_or("path")?.to_owned();
    let aws = ["--aws-endpoint-url", endpoint.as_str(), "--aws-region", "us-east-1"];
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            compliance_with(&args, &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")])
        })
    };
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();

    let mut scan = owned(&["scan", "--aws", "--out", &out, "--fail-on", "high"]);
    scan.extend(owned(&aws));
    let result = run(scan).await?;
    assert_eq!(result.status.code(), Some(1), "the dormant user is a high failure: {}", text(&result.stderr));
    let report = report_in(dir.path())?;
    assert_eq!(report["gaps"].as_array().map(Vec::len), Some(0), "{}", report["gaps"]);
    let evidence = report["evidence"].as_array().ok_or("evidence")?;
    let find = |check: &str, name: &str| {
        evidence.iter().find(|e| e["check_id"] == check && e["resource"]["name"] == name).map(|e| e["status"].clone())
    };
    assert_eq!(find("aws.iam.user_inactive", "dormant"), Some(json!("fail")));
    assert_eq!(find("aws.iam.user_inactive", "fresh"), Some(json!("pass")));
    assert_eq!(find("aws.s3.versioning", "open-data"), Some(json!("fail")));
    let report_path =
        std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()).map(|e| e.path()).next().ok_or("no report")?;
    let report_arg = report_path.to_str().ok_or("path")?.to_owned();

    // Dry run: the exact calls, nothing changed.
    let mut remediate = owned(&["remediate", "--report", &report_arg, "--out", &out]);
    remediate.extend(owned(&aws));
    let result = run(remediate.clone()).await?;
    assert_eq!(result.status.code(), Some(0), "{}{}", text(&result.stdout), text(&result.stderr));
    assert!(text(&result.stdout).contains("s3:PutBucketVersioning --bucket open-data"), "{}", text(&result.stdout));
    assert!(s3.get_bucket_versioning().bucket("open-data").send().await?.status().is_none());

    // Apply without approval: S3 fixes go through, disabling the user does not.
    let mut apply = remediate.clone();
    apply.push("--apply".into());
    let result = run(apply.clone()).await?;
    assert_eq!(result.status.code(), Some(1), "{}", text(&result.stdout));
    assert_eq!(
        s3.get_bucket_versioning().bucket("open-data").send().await?.status().map(|s| s.as_str().to_owned()).as_deref(),
        Some("Enabled")
    );
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_ok());

    // With --yes, after review.
    apply.extend(owned(&["--yes", "--check", "aws.iam.user_inactive"]));
    let result = run(apply).await?;
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stdout));
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_err());
    assert!(iam.get_login_profile().user_name("fresh").send().await.is_ok());
    Ok(())
}

#[test]
fn aws_without_a_region_is_a_usage_error() {
    let out = compliance(&["scan", "--aws"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no AWS region"), "{}", text(&out.stderr));
}

/// An endpoint that accepts connections and never answers: every call ends
/// at the call timeout, and the scan ends with its gaps instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_aws_endpoint_ends_in_gaps_not_a_hang() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket); // read nothing, answer nothing, keep it open
        }
    });
    let out_dir = tempfile::tempdir()?;
    let out_path = out_dir.path().to_str().ok_or("path")?.to_owned();
    let args: Vec<String> = [
        "scan",
        "--aws",
        "--aws-endpoint-url",
        &endpoint,
        "--aws-region",
        "us-east-1",
        "--aws-max-attempts",
        "1",
        "--aws-call-timeout",
        "1",
        "--out",
        &out_path,
        "--fail-on-gaps",
    ]
    .map(str::to_owned)
    .to_vec();
    let env = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];
    // The guard of this test, far above the timeouts: without them the scan never ends.
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            compliance_with(&args, &env)
        }),
    )
    .await??;
    held.abort();
    assert_eq!(out.status.code(), Some(1), "gaps, with --fail-on-gaps: {}", text(&out.stderr));
    let report = report_in(out_dir.path())?;
    let gaps = report["gaps"].as_array().ok_or("gaps")?;
    for collector in ["aws-iam", "aws-s3", "aws-config"] {
        assert!(gaps.iter().any(|g| g["collector"] == collector), "{collector}: {gaps:?}");
    }
    Ok(())
}
