//! The IAM access review and the IAM remediator.

use std::collections::BTreeMap;
use std::sync::Arc;

use compliance_aws::iam::{IamCollector, IamConfig, IamRemediator};
use compliance_core::testkit::{check_collector, check_remediator};
use compliance_core::{ApproveAll, Collector, Engine, Mode, RejectAll, Scope, Status};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{TestResult, days_ago, moto, sdk};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    StalePassword,
    FreshPassword,
    NeverUsedOldKey,
    NoCredential,
    NewUnusedPassword,
}

fn kind_of(i: usize) -> Kind {
    match i % 5 {
        0 => Kind::StalePassword,
        1 => Kind::FreshPassword,
        2 => Kind::NeverUsedOldKey,
        3 => Kind::NoCredential,
        _ => Kind::NewUnusedPassword,
    }
}

async fn seed(iam: &aws_sdk_iam::Client, users: usize) -> Result<BTreeMap<String, Value>, Box<dyn std::error::Error>> {
    let results: Vec<Result<(String, Value), String>> = futures::stream::iter(0..users)
        .map(|i| {
            let iam = iam.clone();
            async move {
                let name = format!("user-{i:04}");
                iam.create_user().user_name(&name).send().await.map_err(|e| format!("{e:?}"))?;
                let fields = match kind_of(i) {
                    Kind::StalePassword => {
                        iam.create_login_profile()
                            .user_name(&name)
                            .password("Pa55word!x")
                            .send()
                            .await
                            .map_err(|e| format!("{e:?}"))?;
                        json!({ "password_last_used": days_ago(200), "user_creation_time": days_ago(400) })
                    }
                    Kind::FreshPassword => {
                        iam.create_login_profile()
                            .user_name(&name)
                            .password("Pa55word!x")
                            .send()
                            .await
                            .map_err(|e| format!("{e:?}"))?;
                        json!({ "password_last_used": days_ago(5), "user_creation_time": days_ago(400) })
                    }
                    Kind::NeverUsedOldKey => {
                        iam.create_access_key().user_name(&name).send().await.map_err(|e| format!("{e:?}"))?;
                        json!({ "user_creation_time": days_ago(400), "access_key_1_last_rotated": days_ago(400) })
                    }
                    Kind::NoCredential => json!({ "user_creation_time": days_ago(400) }),
                    Kind::NewUnusedPassword => {
                        iam.create_login_profile()
                            .user_name(&name)
                            .password("Pa55word!x")
                            .send()
                            .await
                            .map_err(|e| format!("{e:?}"))?;
                        json!({})
                    }
                };
                Ok((name, fields))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut fields = BTreeMap::new();
    for r in results {
        let (name, f) = r?;
        fields.insert(name, f);
    }
    Ok(fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn the_review_sees_every_user_of_a_1000_user_account_and_flags_exactly_the_right_ones() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let fields = seed(&aws_sdk_iam::Client::new(&sdk), 1000).await?;
    moto.set_credential_report(
        &json!({ "users": fields, "root": { "access_key_1_active": "true", "mfa_active": "false" } }),
    )?;
    moto.reset_calls()?;

    let collector = IamCollector::new(&sdk, IamConfig::default());
    let collection = check_collector(&collector, &Scope::all()).await?;

    let inactive: Vec<_> =
        collection.evidence.iter().filter(|e| e.check_id.as_str() == "aws.iam.user_inactive").collect();
    assert_eq!(inactive.len(), 1000, "every user yields evidence, compliant ones too");
    for e in &inactive {
        let i: usize = e.resource.name.trim_start_matches("user-").parse()?;
        let expected = match kind_of(i) {
            Kind::StalePassword | Kind::NeverUsedOldKey => Status::Fail,
            _ => Status::Pass,
        };
        assert_eq!(e.status, expected, "{} ({:?}): {}", e.resource.name, kind_of(i), e.message);
        assert_eq!(e.resource.account.as_deref(), Some("123456789012"));
    }
    assert_eq!(inactive.iter().filter(|e| e.status == Status::Fail).count(), 400);

    // The root row is the account, not a user.
    let root: Vec<_> = collection.evidence.iter().filter(|e| e.resource.kind == "AWSAccount").collect();
    let root_checks: Vec<(&str, Status)> = root.iter().map(|e| (e.check_id.as_str(), e.status)).collect();
    assert_eq!(
        root_checks,
        [
            ("aws.iam.root_access_keys", Status::Fail),
            ("aws.iam.root_mfa", Status::Fail),
            ("aws.iam.root_recently_used", Status::Pass)
        ]
    );
    assert!(!inactive.iter().any(|e| e.resource.name == "<root_account>"));

    // Console users without MFA fail; users without a password are not applicable.
    let mfa = |name: &str| {
        collection
            .evidence
            .iter()
            .find(|e| e.check_id.as_str() == "aws.iam.console_mfa" && e.resource.name == name)
            .map(|e| e.status)
    };
    assert_eq!(mfa("user-0000"), Some(Status::Fail));
    assert_eq!(mfa("user-0003"), Some(Status::NotApplicable));

    // A constant number of calls: no ListUsers, no GetUser, whatever the number of users.
    let calls = moto.calls()?;
    let iam_calls: BTreeMap<String, u64> = calls
        .as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| k.starts_with("iam:")).map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect()
        })
        .unwrap_or_default();
    assert_eq!(iam_calls.get("iam:GetCredentialReport"), Some(&1), "{iam_calls:?}");
    assert!(
        iam_calls.keys().all(|k| k == "iam:GenerateCredentialReport" || k == "iam:GetCredentialReport"),
        "{iam_calls:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn disabling_an_inactive_user_needs_approval_and_is_verified_and_recorded() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    for name in ["dormant", "active"] {
        iam.create_user().user_name(name).send().await?;
        iam.create_login_profile().user_name(name).password("Pa55word!x").send().await?;
        iam.create_access_key().user_name(name).send().await?;
    }
    moto.set_credential_report(&json!({ "users": {
        "dormant": { "password_last_used": days_ago(150), "access_key_1_last_used_date": days_ago(120), "user_creation_time": days_ago(900) },
        "active": { "password_last_used": days_ago(1) },
    }}))?;
    let collector = IamCollector::new(&sdk, IamConfig::default());
    let remediator = IamRemediator::new(&sdk);
    let scope = Scope::only(["aws.iam.user_inactive"]);
    let run = collector.collect(&scope).await?;
    let dormant = run.evidence.iter().find(|e| e.resource.name == "dormant").ok_or("no evidence for dormant")?;
    assert_eq!(dormant.status, Status::Fail);

    let engine = Engine::new().with_remediator(Arc::new(remediator.clone()));
    let plan = engine.plan(dormant).await?.ok_or("no plan")?;
    assert_eq!(plan.changes.len(), 2, "{:?}", plan.changes);
    let dry = engine.apply(&plan, Mode::DryRun, &RejectAll).await?;
    assert!(!dry.applied);
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_ok(), "dry run changes nothing");
    assert!(engine.apply(&plan, Mode::Apply, &RejectAll).await.is_err(), "high risk: refused without approval");
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_ok());

    let outcome = engine.apply(&plan, Mode::Apply, &ApproveAll { by: "security-lead".into() }).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    assert_eq!(outcome.approval.as_ref().map(|a| a.by.as_str()), Some("security-lead"));
    assert_eq!(outcome.record["disabled"]["login_profile_deleted"], true);
    assert_eq!(outcome.record["disabled"]["access_keys_deactivated"].as_array().map(Vec::len), Some(1));
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_err(), "login profile deleted");
    assert!(iam.get_login_profile().user_name("active").send().await.is_ok(), "others untouched");

    // The next review sees it: no enabled credential, so compliant.
    let after = collector.collect(&scope).await?;
    assert_eq!(after.evidence.iter().find(|e| e.resource.name == "dormant").map(|e| e.status), Some(Status::Pass));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn the_iam_remediator_passes_the_conformance_suite() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "us-east-1").await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let mut users = serde_json::Map::new();
    for name in ["old-1", "old-2"] {
        iam.create_user().user_name(name).send().await?;
        iam.create_access_key().user_name(name).send().await?;
        users.insert(
            name.into(),
            json!({ "access_key_1_last_used_date": days_ago(300), "user_creation_time": days_ago(600) }),
        );
    }
    moto.set_credential_report(&json!({ "users": users }))?;
    let collector = IamCollector::new(&sdk, IamConfig::default());
    let fixed =
        check_remediator(&IamRemediator::new(&sdk), &collector, &Scope::only(["aws.iam.user_inactive"]), 5).await?;
    assert_eq!(fixed, 2);
    Ok(())
}
