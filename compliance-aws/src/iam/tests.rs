//! Unit tests of the IAM review: judges, report polling, the collector and
//! the remediator through a mock of [`IamApi`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use compliance_core::{Collector, Error, Evidence, Mode, Remediator, Risk, Scope, Status};

use super::collector::user_resource;
use super::*;
use crate::api::ApiError;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().unwrap_or_default()
}

fn ago(days: i64) -> Option<DateTime<Utc>> {
    Some(now() - chrono::Duration::days(days))
}

fn row(
    password: Option<bool>,
    password_used: Option<DateTime<Utc>>,
    keys: [(bool, Option<DateTime<Utc>>); 2],
    created: i64,
) -> CredentialRow {
    CredentialRow {
        user: "u".into(),
        arn: "arn:aws:iam::123456789012:user/u".into(),
        created: ago(created),
        password_enabled: password,
        password_last_used: password_used,
        mfa_active: false,
        keys: keys.map(|(active, used)| AccessKeyColumns { active, last_rotated: ago(created), last_used: used }),
    }
}

const OFF: (bool, Option<DateTime<Utc>>) = (false, None);

#[test]
fn user_inactive_cases() {
    let cases = [
        ("no credential at all", row(Some(false), None, [OFF, OFF], 400), Status::Pass),
        ("password used 10 days ago", row(Some(true), ago(10), [OFF, OFF], 400), Status::Pass),
        ("password used 91 days ago", row(Some(true), ago(91), [OFF, OFF], 400), Status::Fail),
        ("password used exactly 90 days ago", row(Some(true), ago(90), [OFF, OFF], 400), Status::Pass),
        (
            "key used yesterday, password stale: most recent use counts",
            row(Some(true), ago(200), [(true, ago(1)), OFF], 30),
            Status::Pass,
        ),
        ("password never used, old user", row(Some(true), None, [OFF, OFF], 120), Status::Fail),
        ("password never used, new user", row(Some(true), None, [OFF, OFF], 5), Status::Pass),
        ("key never used, old user", row(Some(false), None, [(true, None), OFF], 365), Status::Fail),
        (
            "inactive key used long ago does not count",
            row(Some(false), None, [(false, ago(500)), OFF], 365),
            Status::Pass,
        ),
        ("old user, key in use, password never used", row(Some(true), None, [(true, ago(2)), OFF], 365), Status::Fail),
        ("second key used recently", row(Some(false), None, [(true, ago(300)), (true, ago(3))], 365), Status::Pass),
    ];
    for (name, r, expected) in cases {
        let v = judge_user_inactive(&r, 90, now());
        assert_eq!(v.status, expected, "{name}: {}", v.message);
    }
}

#[test]
fn other_user_rules() {
    let mut r = row(Some(true), ago(1), [(true, ago(1)), OFF], 200);
    assert_eq!(judge_console_mfa(&r).status, Status::Fail);
    r.mfa_active = true;
    assert_eq!(judge_console_mfa(&r).status, Status::Pass);
    assert_eq!(judge_console_mfa(&row(Some(false), None, [OFF, OFF], 1)).status, Status::NotApplicable);
    assert_eq!(judge_key_rotation(&r, 90, now()).status, Status::Fail, "rotated 200 days ago");
    assert_eq!(judge_key_rotation(&row(None, None, [(true, None), OFF], 10), 90, now()).status, Status::Pass);
    assert_eq!(judge_key_rotation(&row(None, None, [OFF, OFF], 10), 90, now()).status, Status::NotApplicable);
    assert_eq!(
        judge_key_unused(&row(None, None, [(true, None), OFF], 10), 90, now()).status,
        Status::Pass,
        "a new key"
    );
    assert_eq!(judge_key_unused(&row(None, None, [(true, None), OFF], 100), 90, now()).status, Status::Fail);
    assert_eq!(judge_key_unused(&row(None, None, [(true, ago(100)), OFF], 200), 90, now()).status, Status::Fail);
}

#[test]
fn special_values_and_bad_rows() -> Result<(), Error> {
    let header = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    let csv = format!(
        "{header}\n\
        <root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2026-11-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
        alice,arn:aws:iam::123456789012:user/alice,2024-01-01T00:00:00+00:00,true,no_information,N/A,N/A,false,true,2024-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
        \"bob,ops\",arn:aws:iam::123456789012:user/bob,2024-01-01T00:00:00+00:00,false,not_supported,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
        carol,arn:aws:iam::123456789012:user/carol,yesterday,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    );
    let (rows, bad) = parse_credential_report(csv.as_bytes())?;
    assert_eq!(rows.len(), 3);
    assert!(rows[0].is_root() && rows[0].password_enabled.is_none() && rows[0].mfa_active);
    assert_eq!(rows[1].password_last_used, None);
    assert_eq!(rows[2].user, "bob,ops", "quoted names with commas");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 5);
    assert_eq!(bad[0].user.as_deref(), Some("carol"));
    assert!(bad[0].reason.starts_with("user_creation_time: not a date"), "{}", bad[0].reason);
    assert!(parse_credential_report(b"user,arn\nx,y\n").is_err(), "missing columns");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_report_is_polled_until_complete() -> Result<(), Error> {
    let mut api = MockIamApi::new();
    let mut states =
        vec![ReportState::Started, ReportState::InProgress, ReportState::Complete, ReportState::Complete].into_iter();
    api.expect_generate_credential_report()
        .times(4)
        .returning(move || Ok(states.next().unwrap_or(ReportState::Complete)));
    let mut gets = 0;
    api.expect_get_credential_report().times(2).returning(move || {
        gets += 1;
        if gets == 1 {
            Err(ApiError::new("iam:GetCredentialReport", Some("ReportInProgress"), "not yet", Some(410)))
        } else {
            Ok(CredentialReport { content: b"user,arn\n".to_vec(), generated_at: None })
        }
    });
    let report = fetch_credential_report(&api, &IamConfig::default()).await?;
    assert_eq!(report.content, b"user,arn\n");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_report_that_never_completes_is_an_error_and_denied_names_the_permission() {
    let mut api = MockIamApi::new();
    api.expect_generate_credential_report().returning(|| Ok(ReportState::InProgress));
    api.expect_get_credential_report().never();
    let config = IamConfig { report_wait_secs: 10, ..IamConfig::default() };
    let err = fetch_credential_report(&api, &config).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("not ready within 10 s"), "{err}");

    let mut denied = MockIamApi::new();
    denied.expect_generate_credential_report().returning(|| {
        Err(ApiError::new("iam:GenerateCredentialReport", Some("AccessDenied"), "User is not authorized", Some(403)))
    });
    let err =
        fetch_credential_report(&denied, &IamConfig::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("needs the iam:GenerateCredentialReport permission"), "{err}");
}

#[tokio::test]
async fn a_missing_root_row_and_a_bad_row_are_error_evidence_not_silence() -> Result<(), Error> {
    let mut api = MockIamApi::new();
    api.expect_generate_credential_report().returning(|| Ok(ReportState::Complete));
    api.expect_get_credential_report().returning(|| {
        let csv = "user,arn,user_creation_time,password_enabled,password_last_used,mfa_active,access_key_1_active\n\
                   ok,arn:aws:iam::123456789012:user/ok,2026-11-01T00:00:00+00:00,false,N/A,false,false\n\
                   broken,arn:aws:iam::123456789012:user/broken,2026-11-01T00:00:00+00:00,maybe,N/A,false,false\n";
        Ok(CredentialReport { content: csv.as_bytes().to_vec(), generated_at: None })
    });
    let collection = IamCollector::with_api(Arc::new(api), IamConfig::default()).collect(&Scope::all()).await?;
    let of = |name: &str, check: &str| {
        collection
            .evidence
            .iter()
            .find(|e| e.resource.name == name && e.check_id.as_str() == check)
            .map(|e| (e.status, e.message.clone()))
    };
    assert_eq!(of("ok", "aws.iam.user_inactive").map(|v| v.0), Some(Status::Pass));
    let broken = of("broken", "aws.iam.user_inactive").unwrap_or((Status::Pass, String::new()));
    assert_eq!(broken.0, Status::Error);
    assert!(broken.1.contains("line 3: password_enabled: not true or false"), "{}", broken.1);
    let root = of("<root_account>", "aws.iam.root_mfa").unwrap_or((Status::Pass, String::new()));
    assert_eq!(root.0, Status::Error);
    assert!(root.1.contains("no <root_account> row"), "{}", root.1);
    Ok(())
}

#[tokio::test]
async fn the_remediator_plans_exactly_what_it_will_disable() -> Result<(), Error> {
    let mut api = MockIamApi::new();
    api.expect_has_login_profile().returning(|_| Ok(true));
    api.expect_access_keys().returning(|_| Ok(vec![("AKIAOLD".into(), true), ("AKIAOFF".into(), false)]));
    let remediator = IamRemediator::with_api(Arc::new(api));
    let r = row(Some(true), ago(200), [OFF, OFF], 400);
    let check = checks().into_iter().next().ok_or_else(|| Error::Parse {
        source_name: "x".into(),
        line: None,
        message: "no check".into(),
    })?;
    let evidence = Evidence::new(&check, user_resource(&r), Status::Fail, "inactive");
    let plan = remediator.plan(&evidence).await?.ok_or_else(|| Error::Parse {
        source_name: "x".into(),
        line: None,
        message: "no plan".into(),
    })?;
    assert_eq!(plan.risk, Risk::High);
    let ops: Vec<&str> = plan.changes.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "iam:DeleteLoginProfile --user-name u",
            "iam:UpdateAccessKey --user-name u --access-key-id AKIAOLD --status Inactive"
        ]
    );
    Ok(())
}

#[test]
fn the_catalogue_and_the_remediator_agree_on_what_is_fixable() {
    for entry in catalogue().entries() {
        let check = entry.check();
        assert_eq!(super::remediator::disables_the_user(&check.id), check.remediable, "{}", check.id);
    }
    assert_eq!(IamRemediator::with_api(Arc::new(MockIamApi::new())).fixes(), catalogue().remediable());
}

#[test]
fn the_catalogue_has_no_malformed_or_repeated_id() {
    assert!(catalogue().problems().is_empty(), "{:?}", catalogue().problems());
    assert_eq!(catalogue().entries().len(), 7);
}

/// A plan for user `u` that names key AKIAOLD and the login profile.
async fn plan_for_u(api: MockIamApi) -> Result<(IamRemediator, compliance_core::RemediationPlan), Error> {
    let remediator = IamRemediator::with_api(Arc::new(api));
    let r = row(Some(true), ago(200), [OFF, OFF], 400);
    let check = checks().into_iter().next().ok_or_else(|| Error::remediation("test", "no check"))?;
    let evidence = Evidence::new(&check, user_resource(&r), Status::Fail, "inactive");
    let plan = remediator.plan(&evidence).await?.ok_or_else(|| Error::remediation("test", "no plan"))?;
    Ok((remediator, plan))
}

#[tokio::test]
async fn a_key_used_after_the_plan_was_made_stops_the_apply() -> Result<(), Error> {
    let mut api = MockIamApi::new();
    api.expect_has_login_profile().returning(|_| Ok(true));
    api.expect_access_keys().returning(|_| Ok(vec![("AKIAOLD".into(), true)]));
    api.expect_access_key_last_used().returning(|_| Ok(Some(Utc::now() + chrono::Duration::seconds(5))));
    api.expect_delete_login_profile().never();
    api.expect_set_access_key_active().never();
    let (remediator, plan) = plan_for_u(api).await?;
    let err = remediator.apply(&plan, Mode::Apply).await.err().ok_or_else(|| Error::remediation("test", "applied"))?;
    assert!(err.to_string().contains("used at") && err.to_string().contains("after the plan was made"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_key_the_plan_does_not_name_is_never_touched() -> Result<(), Error> {
    let mut api = MockIamApi::new();
    api.expect_has_login_profile().returning(|_| Ok(true));
    // At planning: one active key. At apply: a second one appeared.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    api.expect_access_keys().returning(move |_| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Ok(vec![("AKIAOLD".into(), true)])
        } else {
            Ok(vec![("AKIAOLD".into(), true), ("AKIANEW".into(), true)])
        }
    });
    api.expect_access_key_last_used().returning(|_| Ok(None));
    api.expect_delete_login_profile().never();
    api.expect_set_access_key_active().never();
    let (remediator, plan) = plan_for_u(api).await?;
    let err = remediator.apply(&plan, Mode::Apply).await.err().ok_or_else(|| Error::remediation("test", "applied"))?;
    assert!(err.to_string().contains("AKIANEW"), "{err}");
    Ok(())
}

#[tokio::test]
async fn only_the_planned_keys_are_deactivated() -> Result<(), Error> {
    let mut api = MockIamApi::new();
    api.expect_has_login_profile().returning(|_| Ok(false));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&calls);
    api.expect_access_keys().returning(move |_| {
        // Planning, then apply: AKIAOLD active; after the change: inactive.
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            Ok(vec![("AKIAOLD".into(), true), ("AKIAOFF".into(), false)])
        } else {
            Ok(vec![("AKIAOLD".into(), false), ("AKIAOFF".into(), false)])
        }
    });
    api.expect_access_key_last_used().returning(|_| Ok(Some(Utc::now() - chrono::Duration::days(200))));
    api.expect_set_access_key_active()
        .withf(|user, key, active| user == "u" && key == "AKIAOLD" && !*active)
        .times(1)
        .returning(|_, _, _| Ok(()));
    let (remediator, plan) = plan_for_u(api).await?;
    let outcome = remediator.apply(&plan, Mode::Apply).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.map(|v| v.status), Some(Status::Pass));
    Ok(())
}

#[test]
fn the_root_user_used_recently_fails_and_long_ago_or_never_passes() {
    use chrono::Duration;
    let now = Utc::now();
    let mut root = row(Some(true), None, [OFF, OFF], 900);
    root.user = "<root_account>".into();
    assert_eq!(judge_root_recently_used(&root, 90, now).status, Status::Pass, "never used");
    root.password_last_used = Some(now - Duration::days(400));
    assert_eq!(judge_root_recently_used(&root, 90, now).status, Status::Pass);
    root.keys[1].last_used = Some(now - Duration::days(3));
    let recent = judge_root_recently_used(&root, 90, now);
    assert_eq!(recent.status, Status::Fail);
    assert_eq!(recent.message, "the root user's access_key_2 was used 3 days ago (within 90)");
}
