//! The IAM checks: judges over one credential-report row, and the
//! catalogue that binds each to its metadata.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use compliance_core::{Catalogue, Check, CheckDef, CheckSpec, Severity, Status, Verdict};
use serde_json::{Value, json};

use super::IamConfig;
use super::report::{AccessKeyColumns, CredentialRow};

/// The resource kind of an IAM user's checks.
pub(super) const USER_KIND: &str = "IAMUser";
/// The resource kind of the root user's checks (the account).
pub(super) const ROOT_KIND: &str = "AWSAccount";

/// What every judge of one review shares: the settings and the time.
#[derive(Clone, Debug)]
pub struct Review {
    /// Thresholds.
    pub config: IamConfig,
    /// The time the review judges at.
    pub now: DateTime<Utc>,
}

fn days(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_days()
}

/// `aws.iam.user_inactive`. A user with no enabled credential (no password,
/// no active key) passes. Otherwise the user fails when the most recent use
/// of any enabled credential is older than the threshold, or when an enabled
/// credential was never used and the user is older than the threshold.
pub fn judge_user_inactive(row: &CredentialRow, threshold_days: i64, now: DateTime<Utc>) -> Verdict {
    let mut enabled: Vec<(&str, Option<DateTime<Utc>>)> = Vec::new();
    if row.password_enabled == Some(true) {
        enabled.push(("password", row.password_last_used));
    }
    for (i, k) in row.keys.iter().enumerate() {
        if k.active {
            enabled.push((if i == 0 { "access_key_1" } else { "access_key_2" }, k.last_used));
        }
    }
    let credentials: Vec<Value> =
        enabled.iter().map(|(c, used)| json!({ "credential": c, "last_used": used })).collect();
    let age = row.created.map(|c| days(c, now));
    let details = json!({ "threshold_days": threshold_days, "user_age_days": age, "enabled_credentials": credentials });
    if enabled.is_empty() {
        return Verdict::new(Status::Pass, "no enabled credential (no password, no active access key)", details);
    }
    let last_activity = enabled.iter().filter_map(|(_, used)| *used).max();
    if let Some(last) = last_activity {
        let idle = days(last, now);
        if idle > threshold_days {
            return Verdict::new(
                Status::Fail,
                format!("last activity {idle} days ago (threshold {threshold_days})"),
                details,
            );
        }
    }
    let never_used: Vec<&str> = enabled.iter().filter(|(_, used)| used.is_none()).map(|(c, _)| *c).collect();
    match age {
        Some(age) if !never_used.is_empty() && age > threshold_days => Verdict::new(
            Status::Fail,
            format!(
                "{} never used, and the user is {age} days old (threshold {threshold_days})",
                never_used.join(" and ")
            ),
            details,
        ),
        None if !never_used.is_empty() && last_activity.is_none() => {
            Verdict::new(Status::Fail, "enabled credentials never used, and the user's age is unknown", details)
        }
        _ => match last_activity {
            Some(last) => Verdict::new(Status::Pass, format!("last activity {} days ago", days(last, now)), details),
            None => Verdict::new(
                Status::Pass,
                format!("new user ({} days old); credentials not used yet", age.unwrap_or(0)),
                details,
            ),
        },
    }
}

/// `aws.iam.console_mfa`: a user with a console password has MFA.
pub fn judge_console_mfa(row: &CredentialRow) -> Verdict {
    let details = json!({ "password_enabled": row.password_enabled, "mfa_active": row.mfa_active });
    match (row.password_enabled, row.mfa_active) {
        (Some(true), true) => Verdict::new(Status::Pass, "console password protected by MFA", details),
        (Some(true), false) => Verdict::new(Status::Fail, "console password without MFA", details),
        _ => Verdict::new(Status::NotApplicable, "no console password", details),
    }
}

fn active_keys(row: &CredentialRow) -> impl Iterator<Item = (usize, &AccessKeyColumns)> {
    row.keys.iter().enumerate().filter(|(_, k)| k.active).map(|(i, k)| (i + 1, k))
}

/// `aws.iam.access_key_rotated`: every active key was rotated within the threshold.
pub fn judge_key_rotation(row: &CredentialRow, threshold_days: i64, now: DateTime<Utc>) -> Verdict {
    let keys: Vec<(usize, Option<i64>)> =
        active_keys(row).map(|(n, k)| (n, k.last_rotated.map(|t| days(t, now)))).collect();
    let details = json!({ "threshold_days": threshold_days,
        "active_keys": keys.iter().map(|(n, age)| json!({ "key": n, "days_since_rotation": age })).collect::<Vec<_>>() });
    if keys.is_empty() {
        return Verdict::new(Status::NotApplicable, "no active access key", details);
    }
    let stale: Vec<String> = keys
        .iter()
        .filter(|(_, age)| age.is_none_or(|a| a > threshold_days))
        .map(|(n, _)| format!("access key {n}"))
        .collect();
    if stale.is_empty() {
        Verdict::new(Status::Pass, format!("active keys rotated within {threshold_days} days"), details)
    } else {
        Verdict::new(Status::Fail, format!("{} not rotated within {threshold_days} days", stale.join(", ")), details)
    }
}

/// `aws.iam.access_key_unused`: no active key is left unused: used within the
/// threshold, or younger than it.
pub fn judge_key_unused(row: &CredentialRow, threshold_days: i64, now: DateTime<Utc>) -> Verdict {
    let mut unused = Vec::new();
    let mut facts = Vec::new();
    for (n, k) in active_keys(row) {
        let idle = k.last_used.map(|t| days(t, now));
        let age = k.last_rotated.or(row.created).map(|t| days(t, now));
        facts.push(json!({ "key": n, "days_since_use": idle, "key_age_days": age }));
        let stale = match idle {
            Some(d) => d > threshold_days,
            None => age.is_none_or(|a| a > threshold_days),
        };
        if stale {
            unused.push(format!("access key {n}"));
        }
    }
    let details = json!({ "threshold_days": threshold_days, "active_keys": facts });
    if facts.is_empty() {
        Verdict::new(Status::NotApplicable, "no active access key", details)
    } else if unused.is_empty() {
        Verdict::new(Status::Pass, format!("active keys used within {threshold_days} days"), details)
    } else {
        Verdict::new(
            Status::Fail,
            format!("{} active but unused for more than {threshold_days} days", unused.join(", ")),
            details,
        )
    }
}

/// `aws.iam.root_access_keys`: the root user has no active access key.
pub fn judge_root_keys(root: &CredentialRow) -> Verdict {
    let active: Vec<usize> = active_keys(root).map(|(n, _)| n).collect();
    let details = json!({ "active_keys": active });
    if active.is_empty() {
        Verdict::new(Status::Pass, "the root user has no active access key", details)
    } else {
        Verdict::new(Status::Fail, format!("the root user has {} active access key(s)", active.len()), details)
    }
}

/// `aws.iam.root_mfa`: the root user has MFA.
pub fn judge_root_mfa(root: &CredentialRow) -> Verdict {
    let details = json!({ "mfa_active": root.mfa_active });
    if root.mfa_active {
        Verdict::new(Status::Pass, "the root user has MFA", details)
    } else {
        Verdict::new(Status::Fail, "the root user has no MFA", details)
    }
}

fn user_inactive(row: &CredentialRow, r: &Review) -> Option<Verdict> {
    (!row.is_root()).then(|| judge_user_inactive(row, r.config.inactive_days, r.now))
}

fn console_mfa(row: &CredentialRow, _: &Review) -> Option<Verdict> {
    (!row.is_root()).then(|| judge_console_mfa(row))
}

fn key_rotated(row: &CredentialRow, r: &Review) -> Option<Verdict> {
    (!row.is_root()).then(|| judge_key_rotation(row, r.config.key_rotation_days, r.now))
}

fn key_unused(row: &CredentialRow, r: &Review) -> Option<Verdict> {
    (!row.is_root()).then(|| judge_key_unused(row, r.config.key_unused_days, r.now))
}

fn root_keys(row: &CredentialRow, _: &Review) -> Option<Verdict> {
    row.is_root().then(|| judge_root_keys(row))
}

fn root_mfa(row: &CredentialRow, _: &Review) -> Option<Verdict> {
    row.is_root().then(|| judge_root_mfa(row))
}

/// `aws.iam.root_recently_used`: the root user signed in or used a key within
/// `days`. Root is for the few tasks only it can do; everyday use fails.
pub fn judge_root_recently_used(root: &CredentialRow, days: i64, now: DateTime<Utc>) -> Verdict {
    let uses = [
        ("password", root.password_last_used),
        ("access_key_1", root.keys[0].last_used),
        ("access_key_2", root.keys[1].last_used),
    ];
    let last = uses.iter().filter_map(|(what, at)| at.map(|at| (*what, at))).max_by_key(|(_, at)| *at);
    let details =
        json!({ "threshold_days": days, "last_used": last.map(|(_, at)| at), "by": last.map(|(what, _)| what) });
    match last {
        Some((what, at)) if (now - at).num_days() <= days => Verdict::new(
            Status::Fail,
            format!("the root user's {what} was used {} days ago (within {days})", (now - at).num_days()),
            details,
        ),
        Some((what, at)) => Verdict::new(
            Status::Pass,
            format!("the root user's {what} was last used {} days ago", (now - at).num_days()),
            details,
        ),
        None => Verdict::new(Status::Pass, "the root user has never been used", details),
    }
}

fn root_recently_used(row: &CredentialRow, r: &Review) -> Option<Verdict> {
    row.is_root().then(|| judge_root_recently_used(row, r.config.root_use_days, r.now))
}

/// Every IAM check.
pub(super) static DEFS: &[CheckDef<CredentialRow, Review>] = &[
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.user_inactive",
            title: "IAM users with enabled credentials are in use",
            severity: Severity::High,
            resource_kind: USER_KIND,
            rationale: "A dormant account with a working password or key is an unwatched way in; access reviews remove them.",
            remediation: "Disable the user: delete the login profile and deactivate the access keys (compliance remediate does both, with approval).",
            reference: "PCI DSS v4.0 8.2.6: inactive user accounts are removed or disabled within 90 days",
            remediable: true,
        },
        judge: user_inactive,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.console_mfa",
            title: "Console users have MFA",
            severity: Severity::High,
            resource_kind: USER_KIND,
            rationale: "A password alone is phished or reused; MFA stops most account takeovers.",
            remediation: "Enable an MFA device for the user, or remove the console password.",
            reference: "PCI DSS v4.0 8.4.2",
            remediable: false,
        },
        judge: console_mfa,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.access_key_rotated",
            title: "Active access keys are rotated",
            severity: Severity::Medium,
            resource_kind: USER_KIND,
            rationale: "Long-lived keys leak through logs, laptops and repositories; rotation bounds the damage.",
            remediation: "Create a new key, move its users over, then deactivate and delete the old one.",
            reference: "PCI DSS v4.0 8.3.9",
            remediable: false,
        },
        judge: key_rotated,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.access_key_unused",
            title: "No active access key is left unused",
            severity: Severity::Medium,
            resource_kind: USER_KIND,
            rationale: "An unused active key is risk with no benefit.",
            remediation: "Deactivate, then delete, access keys nobody uses.",
            reference: "PCI DSS v4.0 8.2.6",
            remediable: false,
        },
        judge: key_unused,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.root_access_keys",
            title: "The root user has no access keys",
            severity: Severity::Critical,
            resource_kind: ROOT_KIND,
            rationale: "Root access keys cannot be limited by any policy.",
            remediation: "Delete the root user's access keys; use IAM roles instead.",
            reference: "CIS AWS Foundations 1.4",
            remediable: false,
        },
        judge: root_keys,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.root_mfa",
            title: "The root user has MFA",
            severity: Severity::Critical,
            resource_kind: ROOT_KIND,
            rationale: "The root user can do anything, including closing the account.",
            remediation: "Enable MFA (preferably a hardware key) on the root user.",
            reference: "CIS AWS Foundations 1.5",
            remediable: false,
        },
        judge: root_mfa,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.root_recently_used",
            title: "The root user is not used for everyday work",
            severity: Severity::High,
            resource_kind: ROOT_KIND,
            rationale: "Root bypasses every IAM policy; using it routinely exposes the one credential that can do anything.",
            remediation: "Use IAM roles for administration; keep the root user for the tasks only it can do, with MFA.",
            reference: "CIS AWS Foundations 1.7",
            remediable: false,
        },
        judge: root_recently_used,
    },
];

static CATALOGUE: LazyLock<Catalogue<CredentialRow, Review>> = LazyLock::new(|| Catalogue::new(DEFS));

/// The IAM catalogue.
pub fn catalogue() -> &'static Catalogue<CredentialRow, Review> {
    &CATALOGUE
}

/// The IAM checks.
pub fn checks() -> Vec<Check> {
    CATALOGUE.checks()
}
