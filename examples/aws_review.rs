//! An IAM access review and S3 posture check of the account your AWS
//! credentials point to (or of an emulator: set AWS_ENDPOINT_URL), printing
//! every inactive user and every failing bucket setting.
//!
//! ```text
//! AWS_REGION=eu-west-1 cargo run -p compliance-examples --example aws_review
//! ```

use std::sync::Arc;

use compliance_rs::aws::iam::{IamCollector, IamConfig};
use compliance_rs::aws::s3::{S3Collector, S3Config};
use compliance_rs::{Engine, Scope, Status};

#[tokio::main]
async fn main() {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if sdk.region().is_none() {
        eprintln!("no AWS region: set AWS_REGION (and credentials) first");
        return;
    }
    // Emulators and S3-compatible endpoints need path-style addressing.
    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let engine = Engine::new()
        .with_collector(Arc::new(IamCollector::new(&sdk, IamConfig::default().with_inactive_days(90))))
        .with_collector(Arc::new(S3Collector::new(&sdk, S3Config::default().with_path_style(path_style))));
    let run = engine.run(&Scope::all()).await;
    for e in run.evidence.iter().filter(|e| e.status == Status::Fail) {
        println!("[{}] {} {}: {}", e.severity, e.check_id, e.resource.name, e.message);
    }
    for gap in &run.gaps {
        println!("not judged: {}: {}", gap.collector, gap.reason);
    }
    let judged = run.evidence.iter().filter(|e| matches!(e.status, Status::Pass | Status::Fail)).count();
    println!("{} evidence ({judged} judged), {} gaps", run.evidence.len(), run.gaps.len());
}
