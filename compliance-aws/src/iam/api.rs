//! The IAM calls, as a facade over the SDK, and the credential report's
//! generation and polling.

use std::time::Duration;

use async_trait::async_trait;
use compliance_core::Error;
use tracing::debug;

use super::IamConfig;
use super::report::{CredentialReport, ReportState};
use crate::api::{ApiError, to_chrono};

/// so the decisions (polling, error mapping) are testable on their own.
/// The IAM calls the review and the remediator make: a facade over the SDK,
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
    /// When an access key was last used (`iam:GetAccessKeyLastUsed`); `None` if never.
    async fn access_key_last_used(&self, key_id: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError>;
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

    async fn access_key_last_used(&self, key_id: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        let out = self
            .client
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("iam:GetAccessKeyLastUsed", e))?;
        Ok(out
            .access_key_last_used()
            .and_then(|u| u.last_used_date())
            .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos())))
    }
}

/// Generates the credential report and downloads it, polling while AWS
/// generates it, for at most `config.report_wait_secs`.
pub async fn fetch_credential_report(api: &dyn IamApi, config: &IamConfig) -> Result<CredentialReport, Error> {
    let fail = |e: ApiError| e.into_collect_error("aws-iam");
    let timeout = |reason: String| Error::collect("aws-iam", reason);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.report_wait_secs);
    let longest = Duration::from_millis(config.poll_interval_millis.max(1));
    let mut pause = Duration::from_millis(100).min(longest);
    let mut polls = 0_u32;
    loop {
        let state = api.generate_credential_report().await.map_err(fail)?;
        if state == ReportState::Complete {
            match api.get_credential_report().await {
                Ok(report) => {
                    debug!(polls, "credential report downloaded");
                    return Ok(report);
                }
                // Generated but not yet readable, or expired in between: ask again.
                Err(e) if e.is("ReportInProgress") || e.is("ReportNotPresent") || e.is("ReportExpired") => {}
                Err(e) => return Err(fail(e)),
            }
        }
        polls += 1;
        if tokio::time::Instant::now() + pause > deadline {
            return Err(timeout(format!(
                "the credential report was not ready within {} s ({polls} polls)",
                config.report_wait_secs
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(longest);
    }
}
