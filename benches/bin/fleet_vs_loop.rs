//! An organization scan against the loop users write today (each account,
//! then each region, scanned on its own), side by side on the same moto
//! server: wall time, API calls, evidence.
//!
//! ```text
//! cargo run --release -p compliance-benches --bin fleet_vs_loop -- 50 20 5 0
//! cargo run --release -p compliance-benches --bin fleet_vs_loop -- 50 20 5 20
//! ```
//! Arguments: accounts (50), IAM users per account (20), buckets per account
//! (5), and milliseconds each call waits before moto answers it (0): moto
//! answers on loopback in a few ms from one Python process, so without a
//! delay both sides are bound by its throughput; AWS's calls take tens of
//! ms over the network, which concurrency overlaps. Four regions. Needs the
//! moto virtual environment `scripts/test` creates.

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::sync::Arc;
use std::time::Instant;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use compliance_aws::AwsConfig;
use compliance_aws::endpoint::{AccountHosts, http_client};
use compliance_aws::fleet::FleetCollector;
use compliance_core::{Engine, Scope};
use compliance_test_support::moto::Moto;

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"];

fn calls(moto: &Moto) -> u64 {
    let calls = moto.calls().expect("call counters");
    calls.as_object().map(|m| m.values().filter_map(serde_json::Value::as_u64).sum()).unwrap_or(0)
}

async fn sdk(moto: &Moto, region: &str, credentials: aws_sdk_iam::config::Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client(AccountHosts::new(std::net::Ipv4Addr::LOCALHOST)))
        .region(Region::new(region.to_owned()))
        .endpoint_url(moto.endpoint())
        .credentials_provider(credentials)
        .load()
        .await
}

#[tokio::main]
async fn main() {
    let arg = |n: usize, default: usize| std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (accounts, users, buckets, latency) = (arg(1, 50), arg(2, 20), arg(3, 5), arg(4, 0));
    let moto = Moto::start().expect("moto is not installed; run scripts/test first");
    let python = compliance_test_support::moto::python_path().expect("moto's python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto-organization.py");
    let seeding = Instant::now();
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--endpoint", &moto.endpoint(), "--accounts", &accounts.to_string(), "--regions", &REGIONS.join(",")])
        .args(["--users", &users.to_string(), "--buckets", &buckets.to_string()])
        .output()
        .expect("seeding script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), accounts);
    eprintln!(
        "seeded {accounts} accounts x {} regions ({users} users, {buckets} buckets each) in {:.1} s",
        REGIONS.len(),
        seeding.elapsed().as_secs_f64()
    );

    let static_creds = aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "static");
    let base = sdk(&moto, "us-east-1", static_creds).await;
    let mut config = AwsConfig::default();
    config.account = true;
    config.endpoint_url = Some(moto.endpoint());
    config.organization = true;
    config.role_name = Some("ComplianceAudit".into());
    config.regions = REGIONS.iter().map(|r| (*r).to_owned()).collect();

    if latency > 0 {
        moto.faults(&serde_json::json!({ "every": 0, "latency_ms": latency })).expect("latency");
    }

    // One organization scan.
    moto.reset_calls().expect("reset");
    let started = Instant::now();
    let fleet = FleetCollector::new(&base, config.fleet().expect("fleet"), compliance_aws::account_collectors(&config));
    let run = Engine::new().with_collector(Arc::new(fleet)).run(&Scope::all()).await;
    let fleet_time = started.elapsed().as_secs_f64();
    let fleet_calls = calls(&moto);
    let fleet_evidence = run.evidence.len();
    assert!(run.gaps.is_empty(), "{:?}", run.gaps);

    // The loop: for each account, assume its role, then scan each region as one single-region scan.
    moto.reset_calls().expect("reset");
    let started = Instant::now();
    let sts = aws_sdk_sts::Client::new(&base);
    let collectors = compliance_aws::account_collectors(&config);
    let mut loop_evidence = 0;
    for id in &ids {
        let role = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{id}:role/ComplianceAudit"))
            .role_session_name("loop")
            .send()
            .await
            .expect("assume role");
        let c = role.credentials().expect("credentials");
        let creds = aws_sdk_iam::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "loop",
        );
        for region in REGIONS {
            let account = sdk(&moto, region, creds.clone()).await;
            let mut engine = Engine::new();
            for c in collectors.global(&account, id).into_iter().chain(collectors.regional(&account, id, region)) {
                engine = engine.with_collector(c);
            }
            // One `compliance scan --aws --aws-region <region>` per account and region, one after another.
            loop_evidence += engine.run(&Scope::all()).await.evidence.len();
        }
    }
    let loop_time = started.elapsed().as_secs_f64();
    let loop_calls = calls(&moto);

    println!(
        "| {accounts} accounts x {} regions, {latency} ms per call | wall time | API calls | evidence |",
        REGIONS.len()
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| organization scan (8 accounts, 4 regions at once) | {fleet_time:.1} s | {fleet_calls} | {fleet_evidence} |"
    );
    println!("| loop: one scan per account and region | {loop_time:.1} s | {loop_calls} | {loop_evidence} |");
    println!(
        "| ratio | {:.1}x faster | {:.1}x fewer | global checks counted once per account vs once per region |",
        loop_time / fleet_time,
        loop_calls as f64 / fleet_calls.max(1) as f64
    );
}
