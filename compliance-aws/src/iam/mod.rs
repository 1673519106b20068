//! IAM access reviews from the credential report: one report covers every
//! user, so the number of API calls does not grow with the number of users
//! (a review that lists users and calls `GetUser` for each makes one call
//! per user, misses users past the first page, and sees only passwords).
//!
//! - `report`: the credential report's rows, parsed; `api`: the IAM calls
//!   ([`IamApi`]) and the report's polling; `checks`: the judges and the
//!   catalogue; `collector` and `remediator`.

mod api;
mod checks;
mod collector;
pub mod posture;
mod remediator;
mod report;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

#[cfg(test)]
pub use api::MockIamApi;
pub use api::{IamApi, SdkIam, fetch_credential_report};
pub use checks::{
    Review, catalogue, checks, judge_console_mfa, judge_key_rotation, judge_key_unused, judge_root_keys,
    judge_root_mfa, judge_root_recently_used, judge_user_inactive,
};
pub use collector::IamCollector;
pub use remediator::IamRemediator;
pub use report::{AccessKeyColumns, BadRow, CredentialReport, CredentialRow, ReportState, parse_credential_report};

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
    /// The root user used within this many days fails `aws.iam.root_recently_used`.
    pub root_use_days: i64,
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
            root_use_days: 90,
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
