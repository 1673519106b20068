//! The credential report: its rows, parsed, and the rows that could not be.

use chrono::{DateTime, Utc};
use compliance_core::Error;
use serde::{Deserialize, Serialize};

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
