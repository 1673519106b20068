//! IAM access reviews from the credential report: one report covers every
//! user, so the number of API calls does not grow with the number of users
//! (the seed article listed users without paging, then called GetUser for
//! each, and only looked at passwords).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::{
    Change, Check, CheckId, CheckSpec, Collection, Collector, Error, Evidence, Mode, RemediationOutcome,
    RemediationPlan, Remediator, ResourceRef, Risk, Scope, Severity, Status, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::api::{ApiError, account_of};

/// Settings of the IAM review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct IamConfig {
    /// Days without use after which a user is inactive (PCI DSS 8.2.6: 90).
    pub inactive_days: i64,
    /// Days after which an active access key must have been rotated.
    pub key_rotation_days: i64,
    /// Days after which an active access key that is not used is flagged.
    pub key_unused_days: i64,
    /// How long to wait for AWS to generate the credential report.
    pub report_wait_secs: u64,
    /// Longest pause between polls while the report is generated; polling
    /// starts at 100 ms and doubles up to this.
    pub poll_interval_millis: u64,
}

impl Default for IamConfig {
    fn default() -> Self {
        Self {
            inactive_days: 90,
            key_rotation_days: 90,
            key_unused_days: 90,
            report_wait_secs: 300,
            poll_interval_millis: 1000,
        }
    }
}

impl IamConfig {
    /// Sets the inactivity threshold in days.
    pub fn with_inactive_days(mut self, days: i64) -> Self {
        self.inactive_days = days;
        self
    }

    /// Sets the key rotation threshold in days.
    pub fn with_key_rotation_days(mut self, days: i64) -> Self {
        self.key_rotation_days = days;
        self
    }

    /// Sets the unused-key threshold in days.
    pub fn with_key_unused_days(mut self, days: i64) -> Self {
        self.key_unused_days = days;
        self
    }
}

/// One access key's columns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyColumns {
    /// `access_key_N_active`.
    pub active: bool,
    /// `access_key_N_last_rotated`.
    pub last_rotated: Option<DateTime<Utc>>,
    /// `access_key_N_last_used_date`.
    pub last_used: Option<DateTime<Utc>>,
}

/// One row of the credential report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRow {
    /// `user` (`<root_account>` for the root user).
    pub user: String,
    /// `arn`.
    pub arn: String,
    /// `user_creation_time`.
    pub created: Option<DateTime<Utc>>,
    /// `password_enabled`: `None` for the root row (`not_supported`).
    pub password_enabled: Option<bool>,
    /// `password_last_used` (`no_information` and `N/A` are `None`).
    pub password_last_used: Option<DateTime<Utc>>,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// The two access keys.
    pub keys: [AccessKeyColumns; 2],
}

impl CredentialRow {
    /// True for the `<root_account>` row.
    pub fn is_root(&self) -> bool {
        self.user == ROOT_ROW
    }
}

const ROOT_ROW: &str = "<root_account>";

fn parse_time(column: &str, value: &str) -> Result<Option<DateTime<Utc>>, String> {
    match value {
        "" | "N/A" | "no_information" | "not_supported" => Ok(None),
        _ => DateTime::parse_from_rfc3339(value)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("{column}: not a date ({value:?})")),
    }
}

fn parse_bool(column: &str, value: &str) -> Result<Option<bool>, String> {
    match value {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        "" | "not_supported" | "N/A" => Ok(None),
        _ => Err(format!("{column}: not true or false ({value:?})")),
    }
}

/// A row that could not be read: its line, the user if known, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line in the report.
    pub line: usize,
    /// The user, when the `user` column could be read.
    pub user: Option<String>,
    /// The ARN, when it could be read.
    pub arn: Option<String>,
    /// What is wrong, naming the column.
    pub reason: String,
}

/// Parses the credential report (CSV with the 22 documented columns).
/// Rows that cannot be read are returned apart, with line and column, and
/// the others are still parsed.
///
/// ```
/// use compliance_aws::iam::parse_credential_report;
/// let csv = "user,arn,user_creation_time,password_enabled,password_last_used,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date\n\
///            alice,arn:aws:iam::123456789012:user/alice,2025-01-02T03:04:05+00:00,true,no_information,false,false,N/A,N/A,false,N/A,N/A\n";
/// let (rows, bad) = parse_credential_report(csv.as_bytes())?;
/// assert!(bad.is_empty());
/// assert_eq!(rows[0].password_enabled, Some(true));
/// assert_eq!(rows[0].password_last_used, None); // never used
/// # Ok::<(), compliance_core::Error>(())
/// ```
pub fn parse_credential_report(content: &[u8]) -> Result<(Vec<CredentialRow>, Vec<BadRow>), Error> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(content);
    let headers = reader
        .headers()
        .map_err(|e| Error::Parse { source_name: "credential report".into(), line: Some(1), message: e.to_string() })?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let required = ["user", "arn", "user_creation_time", "password_enabled", "password_last_used", "mfa_active"];
    for name in required {
        if column(name).is_none() {
            return Err(Error::Parse {
                source_name: "credential report".into(),
                line: Some(1),
                message: format!("column {name} is missing"),
            });
        }
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(BadRow { line, user: None, arn: None, reason: e.to_string() });
                continue;
            }
        };
        let get = |name: &str| column(name).and_then(|c| record.get(c)).unwrap_or("");
        let parsed = (|| -> Result<CredentialRow, String> {
            let key = |n: u8| -> Result<AccessKeyColumns, String> {
                let active_col = format!("access_key_{n}_active");
                Ok(AccessKeyColumns {
                    active: parse_bool(&active_col, get(&active_col))?.unwrap_or(false),
                    last_rotated: parse_time(
                        &format!("access_key_{n}_last_rotated"),
                        get(&format!("access_key_{n}_last_rotated")),
                    )?,
                    last_used: parse_time(
                        &format!("access_key_{n}_last_used_date"),
                        get(&format!("access_key_{n}_last_used_date")),
                    )?,
                })
            };
            Ok(CredentialRow {
                user: get("user").to_owned(),
                arn: get("arn").to_owned(),
                created: parse_time("user_creation_time", get("user_creation_time"))?,
                password_enabled: parse_bool("password_enabled", get("password_enabled"))?,
                password_last_used: parse_time("password_last_used", get("password_last_used"))?,
                mfa_active: parse_bool("mfa_active", get("mfa_active"))?.unwrap_or(false),
                keys: [key(1)?, key(2)?],
            })
        })();
        match parsed {
            Ok(row) => rows.push(row),
            Err(reason) => bad.push(BadRow {
                line,
                user: Some(get("user").to_owned()).filter(|u| !u.is_empty()),
                arn: Some(get("arn").to_owned()).filter(|a| !a.is_empty()),
                reason,
            }),
        }
    }
    Ok((rows, bad))
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

const SPECS: [CheckSpec; 6] = [
    CheckSpec {
        id: "aws.iam.user_inactive",
        title: "IAM users with enabled credentials are in use",
        severity: Severity::High,
        resource_kind: "IAMUser",
        rationale: "A dormant account with a working password or key is an unwatched way in; access reviews remove them.",
        remediation: "Disable the user: delete the login profile and deactivate the access keys (compliance remediate does both, with approval).",
        reference: "PCI DSS v4.0 8.2.6: inactive user accounts are removed or disabled within 90 days",
        remediable: true,
    },
    CheckSpec {
        id: "aws.iam.console_mfa",
        title: "Console users have MFA",
        severity: Severity::High,
        resource_kind: "IAMUser",
        rationale: "A password alone is phished or reused; MFA stops most account takeovers.",
        remediation: "Enable an MFA device for the user, or remove the console password.",
        reference: "PCI DSS v4.0 8.4.2",
        remediable: false,
    },
    CheckSpec {
        id: "aws.iam.access_key_rotated",
        title: "Active access keys are rotated",
        severity: Severity::Medium,
        resource_kind: "IAMUser",
        rationale: "Long-lived keys leak through logs, laptops and repositories; rotation bounds the damage.",
        remediation: "Create a new key, move its users over, then deactivate and delete the old one.",
        reference: "PCI DSS v4.0 8.3.9",
        remediable: false,
    },
    CheckSpec {
        id: "aws.iam.access_key_unused",
        title: "No active access key is left unused",
        severity: Severity::Medium,
        resource_kind: "IAMUser",
        rationale: "An unused active key is risk with no benefit.",
        remediation: "Deactivate, then delete, access keys nobody uses.",
        reference: "PCI DSS v4.0 8.2.6",
        remediable: false,
    },
    CheckSpec {
        id: "aws.iam.root_access_keys",
        title: "The root user has no access keys",
        severity: Severity::Critical,
        resource_kind: "AWSAccount",
        rationale: "Root access keys cannot be limited by any policy.",
        remediation: "Delete the root user's access keys; use IAM roles instead.",
        reference: "CIS AWS Foundations 1.4",
        remediable: false,
    },
    CheckSpec {
        id: "aws.iam.root_mfa",
        title: "The root user has MFA",
        severity: Severity::Critical,
        resource_kind: "AWSAccount",
        rationale: "The root user can do anything, including closing the account.",
        remediation: "Enable MFA (preferably a hardware key) on the root user.",
        reference: "CIS AWS Foundations 1.5",
        remediable: false,
    },
];

static CHECKS: LazyLock<Vec<Check>> = LazyLock::new(|| SPECS.iter().filter_map(|s| s.to_check().ok()).collect());

/// The IAM checks.
pub fn checks() -> Vec<Check> {
    CHECKS.clone()
}

fn check(index: usize) -> Option<&'static Check> {
    CHECKS.get(index)
}

/// Where the credential report is in its generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportState {
    /// Generation started.
    Started,
    /// Generation is under way.
    InProgress,
    /// The report is ready.
    Complete,
}

/// The report as downloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialReport {
    /// The CSV.
    pub content: Vec<u8>,
    /// When AWS generated it.
    pub generated_at: Option<DateTime<Utc>>,
}

/// The IAM calls the review and the remediator make: a facade over the SDK,
/// so the decisions (polling, error mapping) are testable on their own.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait IamApi: Send + Sync {
    /// `iam:GenerateCredentialReport`.
    async fn generate_credential_report(&self) -> Result<ReportState, ApiError>;
    /// `iam:GetCredentialReport`.
    async fn get_credential_report(&self) -> Result<CredentialReport, ApiError>;
    /// `iam:GetLoginProfile`: whether the user has a console password.
    async fn has_login_profile(&self, user: &str) -> Result<bool, ApiError>;
    /// `iam:DeleteLoginProfile`.
    async fn delete_login_profile(&self, user: &str) -> Result<(), ApiError>;
    /// `iam:ListAccessKeys` (every page): key ids and whether each is active.
    async fn access_keys(&self, user: &str) -> Result<Vec<(String, bool)>, ApiError>;
    /// `iam:UpdateAccessKey`.
    async fn set_access_key_active(&self, user: &str, key_id: &str, active: bool) -> Result<(), ApiError>;
}

/// [`IamApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkIam {
    client: aws_sdk_iam::Client,
}

impl SdkIam {
    /// From an SDK configuration (credentials, endpoint, retries, region).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_iam::Client::new(sdk) }
    }
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[async_trait]
impl IamApi for SdkIam {
    async fn generate_credential_report(&self) -> Result<ReportState, ApiError> {
        let out = self
            .client
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("iam:GenerateCredentialReport", e))?;
        Ok(match out.state() {
            Some(aws_sdk_iam::types::ReportStateType::Complete) => ReportState::Complete,
            Some(aws_sdk_iam::types::ReportStateType::Started) => ReportState::Started,
            _ => ReportState::InProgress,
        })
    }

    async fn get_credential_report(&self) -> Result<CredentialReport, ApiError> {
        let out = self
            .client
            .get_credential_report()
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("iam:GetCredentialReport", e))?;
        Ok(CredentialReport {
            content: out.content().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
            generated_at: out.generated_time().and_then(to_chrono),
        })
    }

    async fn has_login_profile(&self, user: &str) -> Result<bool, ApiError> {
        match self.client.get_login_profile().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = ApiError::from_sdk("iam:GetLoginProfile", e);
                if e.is("NoSuchEntity") { Ok(false) } else { Err(e) }
            }
        }
    }

    async fn delete_login_profile(&self, user: &str) -> Result<(), ApiError> {
        match self.client.delete_login_profile().user_name(user).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = ApiError::from_sdk("iam:DeleteLoginProfile", e);
                // Already gone is what we wanted.
                if e.is("NoSuchEntity") { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn access_keys(&self, user: &str) -> Result<Vec<(String, bool)>, ApiError> {
        let mut keys = Vec::new();
        let mut pages = self.client.list_access_keys().user_name(user).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ApiError::from_sdk("iam:ListAccessKeys", e))?;
            for k in page.access_key_metadata() {
                let active = matches!(k.status(), Some(aws_sdk_iam::types::StatusType::Active));
                keys.push((k.access_key_id().unwrap_or_default().to_owned(), active));
            }
        }
        Ok(keys)
    }

    async fn set_access_key_active(&self, user: &str, key_id: &str, active: bool) -> Result<(), ApiError> {
        let status =
            if active { aws_sdk_iam::types::StatusType::Active } else { aws_sdk_iam::types::StatusType::Inactive };
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(status)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_sdk("iam:UpdateAccessKey", e))
    }
}

/// Generates the credential report and downloads it, polling while AWS
/// generates it, for at most `config.report_wait_secs`.
pub async fn fetch_credential_report(api: &dyn IamApi, config: &IamConfig) -> Result<CredentialReport, Error> {
    let fail = |reason: String| Error::Collect { collector: "aws-iam".into(), reason };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.report_wait_secs);
    let longest = Duration::from_millis(config.poll_interval_millis.max(1));
    let mut pause = Duration::from_millis(100).min(longest);
    let mut polls = 0_u32;
    loop {
        let state = api.generate_credential_report().await.map_err(|e| fail(e.explain()))?;
        if state == ReportState::Complete {
            match api.get_credential_report().await {
                Ok(report) => {
                    debug!(polls, "credential report downloaded");
                    return Ok(report);
                }
                // Generated but not yet readable, or expired in between: ask again.
                Err(e) if e.is("ReportInProgress") || e.is("ReportNotPresent") || e.is("ReportExpired") => {}
                Err(e) => return Err(fail(e.explain())),
            }
        }
        polls += 1;
        if tokio::time::Instant::now() + pause > deadline {
            return Err(fail(format!(
                "the credential report was not ready within {} s ({polls} polls)",
                config.report_wait_secs
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(longest);
    }
}

/// The IAM access review: every user of the account from one credential
/// report, compliant users included.
///
/// ```no_run
/// use compliance_aws::iam::{IamCollector, IamConfig};
/// use compliance_core::{Collector, Scope};
/// # async fn demo() -> compliance_core::Result<()> {
/// let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let collector = IamCollector::new(&sdk, IamConfig::default().with_inactive_days(45));
/// let collection = collector.collect(&Scope::only(["aws.iam.*"])).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IamCollector {
    api: Arc<dyn IamApi>,
    config: IamConfig,
}

impl IamCollector {
    /// A review through the SDK.
    pub fn new(sdk: &aws_config::SdkConfig, config: IamConfig) -> Self {
        Self::with_api(Arc::new(SdkIam::new(sdk)), config)
    }

    /// A review through any [`IamApi`].
    pub fn with_api(api: Arc<dyn IamApi>, config: IamConfig) -> Self {
        Self { api, config }
    }
}

fn user_resource(row: &CredentialRow) -> ResourceRef {
    ResourceRef::new("aws", "IAMUser", row.arn.clone(), row.user.clone())
        .with_account_region(account_of(&row.arn), None)
}

fn root_resource(account: Option<String>) -> ResourceRef {
    let id = format!("arn:aws:iam::{}:root", account.as_deref().unwrap_or("unknown"));
    ResourceRef::new("aws", "AWSAccount", id, "<root_account>").with_account_region(account, None)
}

#[async_trait]
impl Collector for IamCollector {
    fn name(&self) -> &str {
        "aws-iam"
    }

    fn checks(&self) -> Vec<Check> {
        checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let report = fetch_credential_report(self.api.as_ref(), &self.config).await?;
        let (rows, bad) = parse_credential_report(&report.content)?;
        let now = Utc::now();
        let generated = json!(report.generated_at);
        let mut evidence = Vec::new();
        let mut push = |index: usize, resource: &Arc<ResourceRef>, v: Verdict| {
            if let Some(c) = check(index).filter(|c| scope.wants(&c.id)) {
                let mut details = v.details;
                if let Some(map) = details.as_object_mut() {
                    map.insert("report_generated_at".into(), generated.clone());
                }
                evidence.push(
                    Evidence::new(c, Arc::clone(resource), v.status, v.message).with_details(details).observed_at(now),
                );
            }
        };
        let mut root_seen = false;
        let account = rows.iter().find_map(|r| account_of(&r.arn));
        for row in &rows {
            if row.is_root() {
                root_seen = true;
                let resource = Arc::new(root_resource(account_of(&row.arn)));
                push(4, &resource, judge_root_keys(row));
                push(5, &resource, judge_root_mfa(row));
                continue;
            }
            let resource = Arc::new(user_resource(row));
            push(0, &resource, judge_user_inactive(row, self.config.inactive_days, now));
            push(1, &resource, judge_console_mfa(row));
            push(2, &resource, judge_key_rotation(row, self.config.key_rotation_days, now));
            push(3, &resource, judge_key_unused(row, self.config.key_unused_days, now));
        }
        let unreadable = |index: usize, resource: &Arc<ResourceRef>, reason: &str, evidence: &mut Vec<Evidence>| {
            if let Some(c) = check(index).filter(|c| scope.wants(&c.id)) {
                evidence.push(
                    Evidence::new(c, Arc::clone(resource), Status::Error, format!("could not be judged: {reason}"))
                        .with_details(json!({ "reason": reason }))
                        .observed_at(now),
                );
            }
        };
        if !root_seen {
            let resource = Arc::new(root_resource(account.clone()));
            for index in [4, 5] {
                unreadable(index, &resource, "the credential report has no <root_account> row", &mut evidence);
            }
        }
        for b in &bad {
            let name = b.user.clone().unwrap_or_else(|| format!("line {}", b.line));
            let id = b.arn.clone().unwrap_or_else(|| format!("credential-report:{}", b.line));
            let resource =
                Arc::new(ResourceRef::new("aws", "IAMUser", id, name).with_account_region(account.clone(), None));
            let reason = format!("credential report line {}: {}", b.line, b.reason);
            for index in 0..4 {
                unreadable(index, &resource, &reason, &mut evidence);
            }
        }
        info!(users = rows.len(), unreadable_rows = bad.len(), evidence = evidence.len(), "IAM access review done");
        Ok(evidence.into())
    }
}

/// Disables an inactive user: deletes the login profile and deactivates the
/// access keys. High risk (it locks a person or a system out), so the engine
/// asks the [`Approver`](compliance_core::Approver); the outcome records what
/// was disabled, so that it can be restored.
#[derive(Clone)]
pub struct IamRemediator {
    api: Arc<dyn IamApi>,
}

impl IamRemediator {
    /// A remediator through the SDK.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_api(Arc::new(SdkIam::new(sdk)))
    }

    /// A remediator through any [`IamApi`].
    pub fn with_api(api: Arc<dyn IamApi>) -> Self {
        Self { api }
    }

    fn failure(&self, e: impl std::fmt::Display) -> Error {
        Error::Remediation { remediator: "aws-iam".into(), reason: e.to_string() }
    }

    async fn state(&self, user: &str) -> compliance_core::Result<(bool, Vec<(String, bool)>)> {
        let login = self.api.has_login_profile(user).await.map_err(|e| self.failure(e.explain()))?;
        let keys = self.api.access_keys(user).await.map_err(|e| self.failure(e.explain()))?;
        Ok((login, keys))
    }
}

const USER_INACTIVE: &str = "aws.iam.user_inactive";

#[async_trait]
impl Remediator for IamRemediator {
    fn name(&self) -> &str {
        "aws-iam"
    }

    fn fixes(&self) -> Vec<CheckId> {
        USER_INACTIVE.parse().into_iter().collect()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || evidence.check_id.as_str() != USER_INACTIVE {
            return Ok(None);
        }
        let user = &evidence.resource.name;
        let (login, keys) = self.state(user).await?;
        let mut changes = Vec::new();
        if login {
            changes.push(Change::new(
                format!("iam:DeleteLoginProfile --user-name {user}"),
                format!("{user}.login_profile"),
                json!("enabled"),
                json!("deleted"),
            ));
        }
        let active: Vec<&String> = keys.iter().filter(|(_, a)| *a).map(|(id, _)| id).collect();
        for id in &active {
            changes.push(Change::new(
                format!("iam:UpdateAccessKey --user-name {user} --access-key-id {id} --status Inactive"),
                format!("{user}.access_keys.{id}.status"),
                json!("Active"),
                json!("Inactive"),
            ));
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let payload = json!({ "user": user, "delete_login_profile": login, "deactivate_access_keys": active });
        let summary = format!("disable IAM user {user}: {} change(s)", changes.len());
        Ok(Some(RemediationPlan::new(self.name(), evidence, summary, changes, Risk::High, payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        let user = plan.resource.name.clone();
        let (login, keys) = self.state(&user).await?;
        let active: Vec<String> = keys.iter().filter(|(_, a)| *a).map(|(id, _)| id.clone()).collect();
        if mode == Mode::DryRun {
            let record = json!({ "would_delete_login_profile": login, "would_deactivate_access_keys": active });
            return Ok(RemediationOutcome::new(
                plan,
                mode,
                false,
                format!("dry run: user {user} would be disabled; nothing changed"),
            )
            .with_record(record));
        }
        if login {
            self.api.delete_login_profile(&user).await.map_err(|e| self.failure(e.explain()))?;
        }
        for id in &active {
            self.api.set_access_key_active(&user, id, false).await.map_err(|e| self.failure(e.explain()))?;
        }
        // Re-read: the user must now hold no enabled credential.
        let (login_after, keys_after) = self.state(&user).await?;
        let still_active: Vec<&String> = keys_after.iter().filter(|(_, a)| *a).map(|(id, _)| id).collect();
        let Some(check) = check(0) else { return Err(self.failure("check metadata missing")) };
        let status = if !login_after && still_active.is_empty() { Status::Pass } else { Status::Fail };
        let verification = Evidence::new(
            check,
            plan.resource.clone(),
            status,
            format!(
                "after remediation: login profile {}, {} active key(s)",
                if login_after { "present" } else { "absent" },
                still_active.len()
            ),
        )
        .with_details(json!({ "login_profile": login_after, "active_access_keys": still_active }));
        let record = json!({
            "disabled": { "login_profile_deleted": login, "access_keys_deactivated": active },
            "restore": {
                "access_keys": active.iter().map(|id| format!("aws iam update-access-key --user-name {user} --access-key-id {id} --status Active")).collect::<Vec<_>>(),
                "login_profile": if login { format!("aws iam create-login-profile --user-name {user} --password-reset-required (a new password: the old one cannot be restored)") } else { String::new() },
            }
        });
        info!(user, login_deleted = login, keys = active.len(), "IAM user disabled");
        Ok(RemediationOutcome::new(plan, mode, true, format!("disabled IAM user {user}"))
            .with_record(record)
            .with_verification(verification))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            (
                "old user, key in use, password never used",
                row(Some(true), None, [(true, ago(2)), OFF], 365),
                Status::Fail,
            ),
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
            vec![ReportState::Started, ReportState::InProgress, ReportState::Complete, ReportState::Complete]
                .into_iter();
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
            Err(ApiError::new(
                "iam:GenerateCredentialReport",
                Some("AccessDenied"),
                "User is not authorized",
                Some(403),
            ))
        });
        let err = fetch_credential_report(&denied, &IamConfig::default())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
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
}
