//! The IAM access review as a collector.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{Check, Collection, Collector, ResourceRef, Scope};
use serde_json::json;
use tracing::info;

use super::IamConfig;
use super::api::{IamApi, SdkIam, fetch_credential_report};
use super::checks::{ROOT_KIND, Review, USER_KIND, catalogue, checks};
use super::report::{CredentialRow, parse_credential_report};
use crate::api::account_of;

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

pub(super) fn user_resource(row: &CredentialRow) -> ResourceRef {
    ResourceRef::new("aws", USER_KIND, row.arn.clone(), row.user.clone())
        .with_account_region(account_of(&row.arn), None)
}

fn root_resource(account: Option<String>) -> ResourceRef {
    let id = format!("arn:aws:iam::{}:root", account.as_deref().unwrap_or("unknown"));
    ResourceRef::new("aws", ROOT_KIND, id, "<root_account>").with_account_region(account, None)
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
        let review = Review { config: self.config.clone(), now };
        let catalogue = catalogue();
        let mut evidence = Vec::new();
        let account = rows.iter().find_map(|r| account_of(&r.arn));
        let mut root_seen = false;
        for row in &rows {
            let resource = if row.is_root() {
                root_seen = true;
                root_resource(account_of(&row.arn))
            } else {
                user_resource(row)
            };
            evidence.extend(catalogue.judge(row, &review, resource, scope, now));
        }
        // Every verdict says which report it came from.
        let generated = json!(report.generated_at);
        for e in &mut evidence {
            if let Some(map) = e.details.as_object_mut() {
                map.insert("report_generated_at".into(), generated.clone());
            }
        }
        let is_root_check = |c: &Check| c.resource_kind == ROOT_KIND;
        if !root_seen {
            let resource = root_resource(account.clone());
            let reason = "the credential report has no <root_account> row";
            evidence.extend(catalogue.unreadable(resource, reason, scope, now, is_root_check));
        }
        for b in &bad {
            let name = b.user.clone().unwrap_or_else(|| format!("line {}", b.line));
            let id = b.arn.clone().unwrap_or_else(|| format!("credential-report:{}", b.line));
            let resource = ResourceRef::new("aws", USER_KIND, id, name).with_account_region(account.clone(), None);
            let reason = format!("credential report line {}: {}", b.line, b.reason);
            evidence.extend(catalogue.unreadable(resource, &reason, scope, now, |c| !is_root_check(c)));
        }
        info!(users = rows.len(), unreadable_rows = bad.len(), evidence = evidence.len(), "IAM access review done");
        Ok(evidence.into())
    }
}
