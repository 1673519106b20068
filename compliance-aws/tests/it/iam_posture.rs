//! IAM posture against moto: administrator access, direct policies, unused
//! roles, the password policy.

use compliance_aws::iam::posture::{IamPostureCollector, PostureConfig};
use compliance_core::testkit::check_collector;
use compliance_core::{Scope, Status};

use crate::{TestResult, moto, sdk};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const STAR: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn posture_flags_admins_direct_policies_unused_roles_and_a_weak_password_policy() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    // moto does not load AWS's managed policies (AdministratorAccess is unit-tested by its ARN):
    // a customer policy with * on * here, attached to a group, and one inline on a role.
    let custom = iam.create_policy().policy_name("everything").policy_document(STAR).send().await?;
    let custom_arn = custom.policy().and_then(|p| p.arn()).ok_or("no arn")?.to_owned();
    iam.create_group().group_name("admins").send().await?;
    iam.attach_group_policy().group_name("admins").policy_arn(&custom_arn).send().await?;
    iam.create_group().group_name("readers").send().await?;
    iam.create_policy().policy_name("read-bucket").policy_document(READ).send().await?;
    for (user, group) in [("alice", "admins"), ("bob", "readers"), ("carol", "readers")] {
        iam.create_user().user_name(user).send().await?;
        iam.add_user_to_group().user_name(user).group_name(group).send().await?;
    }
    iam.put_user_policy().user_name("carol").policy_name("extra").policy_document(READ).send().await?;
    iam.create_role().role_name("deploy").assume_role_policy_document(TRUST).send().await?;
    iam.put_role_policy().role_name("deploy").policy_name("all").policy_document(STAR).send().await?;
    iam.create_role().role_name("reader").assume_role_policy_document(TRUST).send().await?;
    iam.update_account_password_policy().minimum_password_length(8).require_numbers(true).send().await?;

    let collector = IamPostureCollector::new(&sdk, PostureConfig::default());
    let collection = check_collector(&collector, &Scope::all()).await?;
    let status = |check: &str, name: &str| {
        collection.evidence.iter().find(|e| e.check_id.as_str() == check && e.resource.name == name).map(|e| e.status)
    };
    assert_eq!(status("aws.iam.admin_access", "alice"), Some(Status::Fail), "through the admins group");
    assert_eq!(status("aws.iam.admin_access", "admins"), Some(Status::Fail));
    assert_eq!(status("aws.iam.admin_access", "deploy"), Some(Status::Fail), "an inline policy with * on *");
    assert_eq!(status("aws.iam.admin_access", "bob"), Some(Status::Pass));
    assert_eq!(status("aws.iam.admin_access", "reader"), Some(Status::Pass));
    assert_eq!(status("aws.iam.user_direct_policies", "carol"), Some(Status::Fail));
    assert_eq!(status("aws.iam.user_direct_policies", "bob"), Some(Status::Pass));
    assert_eq!(status("aws.iam.user_direct_policies", "admins"), None, "users only");
    assert_eq!(status("aws.iam.role_unused", "reader"), Some(Status::Pass), "created today: not yet unused");
    let policy = collection
        .evidence
        .iter()
        .find(|e| e.check_id.as_str() == "aws.iam.password_policy")
        .ok_or("no policy evidence")?;
    assert_eq!(policy.status, Status::Fail);
    assert!(policy.message.contains("a minimum length of 8"), "{}", policy.message);
    assert_eq!(policy.resource.account.as_deref(), Some("123456789012"));

    iam.update_account_password_policy()
        .minimum_password_length(14)
        .require_numbers(true)
        .require_lowercase_characters(true)
        .send()
        .await?;
    let again = check_collector(&collector, &Scope::only(["aws.iam.password_policy"])).await?;
    assert_eq!(again.evidence.iter().map(|e| e.status).collect::<Vec<_>>(), [Status::Pass]);
    iam.delete_account_password_policy().send().await?;
    let none = check_collector(&collector, &Scope::only(["aws.iam.password_policy"])).await?;
    assert!(none.evidence[0].message.starts_with("no password policy"), "{}", none.evidence[0].message);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn a_weak_password_policy_is_strengthened_keeping_its_other_settings_and_verified() -> TestResult {
    use std::sync::Arc;

    use compliance_aws::iam::posture::PasswordPolicyRemediator;
    use compliance_core::{ApproveAll, Collector, Engine, Mode, RejectAll};

    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.update_account_password_policy()
        .minimum_password_length(8)
        .require_uppercase_characters(true)
        .password_reuse_prevention(5)
        .allow_users_to_change_password(true)
        .send()
        .await?;
    let scope = Scope::only(["aws.iam.password_policy"]);
    let collector = IamPostureCollector::new(&sdk, PostureConfig::default());
    let weak = collector.collect(&scope).await?;
    let evidence = weak.evidence.first().ok_or("no evidence")?;
    assert_eq!(evidence.status, Status::Fail);

    let engine = Engine::new().with_remediator(Arc::new(PasswordPolicyRemediator::new(&sdk, PostureConfig::default())));
    let plan = engine.plan(evidence).await?.ok_or("no plan")?;
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(targets, ["account.password_policy.min_length", "account.password_policy.numbers"]);
    assert!(!engine.apply(&plan, Mode::DryRun, &RejectAll).await?.applied);
    let unchanged = iam.get_account_password_policy().send().await?;
    assert_eq!(
        unchanged.password_policy().and_then(|p| p.minimum_password_length()),
        Some(8),
        "a dry run changes nothing"
    );
    let outcome = engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    let policy = iam.get_account_password_policy().send().await?;
    let policy = policy.password_policy().ok_or("no policy")?;
    assert_eq!(policy.minimum_password_length(), Some(12));
    assert!(policy.require_numbers() && policy.require_uppercase_characters());
    assert_eq!(policy.password_reuse_prevention(), Some(5), "other settings kept");
    assert!(policy.allow_users_to_change_password());

    // The same plan again: the policy is no longer the one it was made from.
    assert!(engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await.is_err());
    Ok(())
}
