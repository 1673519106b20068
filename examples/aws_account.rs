//! The whole AWS account, built from configuration as the command line
//! builds it: IAM (credential report and posture), S3 buckets and the
//! account-level public access block, CloudTrail, the AWS Config recorder,
//! rules and conformance packs. Prints each failing check and the fix a
//! remediator would make for it: plans only, nothing is changed.
//!
//! ```text
//! AWS_REGION=eu-west-1 cargo run -p compliance-examples --example aws_account
//! # or against an emulator:
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 cargo run -p compliance-examples --example aws_account
//! ```

use std::collections::BTreeMap;

use compliance_rs::{Scope, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(region) = std::env::var("AWS_REGION") else {
        eprintln!("no AWS region: set AWS_REGION (and credentials) first");
        return Ok(());
    };
    let sections: compliance_rs::provider::Sections = serde_json::from_value(serde_json::json!({
        "aws": { "account": true, "region": region, "endpoint_url": std::env::var("AWS_ENDPOINT_URL").ok() },
    }))?;
    let wiring = compliance_rs::registry().build(&sections).await?;
    let engine = wiring.engine();
    let run = engine.run(&Scope::all()).await;

    let mut failing: BTreeMap<&str, Vec<&compliance_rs::Evidence>> = BTreeMap::new();
    for e in run.evidence.iter().filter(|e| e.status == Status::Fail) {
        failing.entry(e.check_id.as_str()).or_default().push(e);
    }
    for (check, evidence) in &failing {
        println!("{check}: {} failing, e.g. {}: {}", evidence.len(), evidence[0].resource.name, evidence[0].message);
        match engine.plan(evidence[0]).await {
            Ok(Some(plan)) => println!("  fix ({:?} risk): {}", plan.risk, plan.summary),
            Ok(None) => {}
            Err(e) => println!("  no plan: {e}"),
        }
    }
    for gap in &run.gaps {
        println!("not judged: {}: {}", gap.collector, gap.reason);
    }
    let errors = run.evidence.iter().filter(|e| e.status == Status::Error).count();
    println!(
        "{} evidence, {} failing checks, {errors} errors, {} gaps",
        run.evidence.len(),
        failing.len(),
        run.gaps.len()
    );
    Ok(())
}
