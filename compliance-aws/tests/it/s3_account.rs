//! The account-level S3 public access block (S3 Control) against moto.

use std::sync::Arc;

use aws_sdk_s3control::types::PublicAccessBlockConfiguration;
use compliance_aws::s3::account::{AccountPublicAccessBlockCollector, AccountPublicAccessBlockRemediator};
use compliance_core::testkit::check_collector;
use compliance_core::{ApproveAll, Engine, Mode, RejectAll, Scope, Status};

use crate::{TestResult, moto, sdk};

const ACCOUNT: &str = "123456789012";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn the_account_block_fails_until_all_four_settings_are_on_and_the_fix_needs_approval() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let control = aws_sdk_s3control::Client::new(&sdk);
    let collector = AccountPublicAccessBlockCollector::new(&sdk);
    let scope = Scope::all();

    // None set: a fail naming the account.
    let none = check_collector(&collector, &scope).await?;
    assert_eq!(none.evidence.len(), 1);
    let evidence = &none.evidence[0];
    assert_eq!((evidence.status, evidence.resource.account.as_deref()), (Status::Fail, Some(ACCOUNT)));

    // Three of four: still a fail, naming the one that is off.
    let three = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(false)
        .restrict_public_buckets(true)
        .build();
    control.put_public_access_block().account_id(ACCOUNT).public_access_block_configuration(three).send().await?;
    let partial = check_collector(&collector, &scope).await?;
    let evidence = partial.evidence.first().ok_or("no evidence")?;
    assert_eq!(evidence.status, Status::Fail);
    assert!(evidence.message.ends_with("BlockPublicPolicy"), "{}", evidence.message);

    // The fix: high risk, so it needs approval; a dry run changes nothing.
    let engine = Engine::new().with_remediator(Arc::new(AccountPublicAccessBlockRemediator::new(&sdk)));
    let plan = engine.plan(evidence).await?.ok_or("no plan")?;
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].target, "account.public_access_block.block_public_policy");
    assert!(!engine.apply(&plan, Mode::DryRun, &RejectAll).await?.applied);
    assert!(engine.apply(&plan, Mode::Apply, &RejectAll).await.is_err(), "refused without approval");
    let unchanged = control.get_public_access_block().account_id(ACCOUNT).send().await?;
    assert_eq!(unchanged.public_access_block_configuration().and_then(|c| c.block_public_policy()), Some(false));

    let outcome = engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    assert!(outcome.record["restore"].as_str().is_some_and(|r| r.contains("BlockPublicPolicy=false")));
    let fixed = check_collector(&collector, &scope).await?;
    assert_eq!(fixed.evidence.first().map(|e| e.status), Some(Status::Pass));
    // The same plan again: the settings are no longer the ones it was made from.
    assert!(engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn a_denied_read_is_error_evidence_naming_the_permission() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    // S3 Control answers AccessDenied, as AWS does without s3:GetAccountPublicAccessBlock.
    moto.faults(&serde_json::json!({ "every": 1, "status": 403, "actions": ["s3control:GetPublicAccessBlock"] }))?;
    let c = check_collector(&AccountPublicAccessBlockCollector::new(&sdk), &Scope::all()).await?;
    let evidence = c.evidence.first().ok_or("no evidence")?;
    assert_eq!((evidence.status, evidence.resource.account.as_deref()), (Status::Error, Some(ACCOUNT)));
    assert!(evidence.message.contains("s3:GetAccountPublicAccessBlock permission"), "{}", evidence.message);
    assert!(moto.faults_injected()? >= 1);
    Ok(())
}
