//! AWS Config aggregators: the rule compliance of every account and region
//! an aggregator collects, read from one account instead of calling each.
//!
//! `DescribeAggregateComplianceByConfigRules` gives the summary per rule,
//! account and region; `GetAggregateComplianceDetailsByConfigRule` then the
//! per-resource results of each (every page of both). An aggregator does
//! not say which managed rule a rule runs, so a rule is filed under the
//! identifier the aggregator account's own rule of that name has
//! (`DescribeConfigRules`, where organization rules are deployed too), else
//! under its name with Security Hub's and conformance packs' decorations
//! removed (`securityhub-s3-bucket-ssl-requests-only-a1b2c3` gives
//! `aws.config.s3-bucket-ssl-requests-only`), which is how managed rules
//! are named. Evidence names the source account and region.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{Check, CheckId, Collection, Collector, Evidence, Gap, GapKind, Scope, Severity};
use futures::StreamExt;
use tracing::info;

use super::api::{ConfigApi, ConfigRule, EvaluationResult, SdkConfigService};
use super::{Judging, merge, rule_check};
use crate::api::ApiError;

/// One rule in one account and region, as the aggregator summarises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateRule {
    /// `ConfigRuleName`.
    pub rule: String,
    /// `AccountId`.
    pub account: String,
    /// `AwsRegion`.
    pub region: String,
    /// `Compliance.ComplianceType`.
    pub compliance: String,
}

/// The aggregator calls.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AggregatorApi: Send + Sync {
    /// `config:DescribeAggregateComplianceByConfigRules`, every page.
    async fn summary(&self, aggregator: &str) -> Result<Vec<AggregateRule>, ApiError>;
    /// `config:GetAggregateComplianceDetailsByConfigRule`, every page.
    async fn details(&self, aggregator: &str, rule: &AggregateRule) -> Result<Vec<EvaluationResult>, ApiError>;
}

fn repeated(operation: &'static str) -> ApiError {
    ApiError::new(operation, None, "the service answered the same NextToken twice", None)
}

#[async_trait]
impl AggregatorApi for SdkConfigService {
    async fn summary(&self, aggregator: &str) -> Result<Vec<AggregateRule>, ApiError> {
        const OP: &str = "config:DescribeAggregateComplianceByConfigRules";
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client()
                .describe_aggregate_compliance_by_config_rules()
                .configuration_aggregator_name(aggregator)
                .limit(1000)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk(OP, e))?;
            rules.extend(out.aggregate_compliance_by_config_rules().iter().map(|r| AggregateRule {
                rule: r.config_rule_name().unwrap_or_default().to_owned(),
                account: r.account_id().unwrap_or_default().to_owned(),
                region: r.aws_region().unwrap_or_default().to_owned(),
                compliance:
                    r.compliance().and_then(|c| c.compliance_type()).map(|c| c.as_str().to_owned()).unwrap_or_default(),
            }));
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() == Some(t) => return Err(repeated(OP)),
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(rules),
            }
        }
    }

    async fn details(&self, aggregator: &str, rule: &AggregateRule) -> Result<Vec<EvaluationResult>, ApiError> {
        const OP: &str = "config:GetAggregateComplianceDetailsByConfigRule";
        let mut results = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client()
                .get_aggregate_compliance_details_by_config_rule()
                .configuration_aggregator_name(aggregator)
                .config_rule_name(&rule.rule)
                .account_id(&rule.account)
                .aws_region(&rule.region)
                .limit(100)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk(OP, e))?;
            results.extend(out.aggregate_evaluation_results().iter().map(|r| {
                EvaluationResult::from_parts(
                    r.evaluation_result_identifier(),
                    r.compliance_type(),
                    r.annotation(),
                    r.result_recorded_time(),
                    r.config_rule_invoked_time(),
                )
            }));
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() == Some(t) => return Err(repeated(OP)),
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(results),
            }
        }
    }
}

/// The managed rule a name is a copy of, by how AWS decorates copies:
/// Security Hub's `securityhub-<name>-<suffix>` and a conformance pack's
/// `<name>-conformance-pack-<suffix>`.
fn undecorated(name: &str) -> &str {
    if let Some(rest) = name.strip_prefix("securityhub-") {
        return rest.rsplit_once('-').map_or(rest, |(base, _)| base);
    }
    match name.find("-conformance-pack-") {
        Some(i) => &name[..i],
        None => name,
    }
}

/// Reads an aggregator: one collection for the accounts and regions it covers.
#[derive(Clone)]
pub struct AggregatorCollector {
    aggregator: String,
    api: Arc<dyn AggregatorApi>,
    rules: Arc<dyn ConfigApi>,
    /// Only the accounts of this shard.
    shard: compliance_core::Shard,
    /// Detail reads at once.
    concurrency: usize,
    /// How long the engine lets it run.
    timeout: Option<std::time::Duration>,
}

impl AggregatorCollector {
    /// Through the SDK, in the aggregator's account and region.
    pub fn new(sdk: &aws_config::SdkConfig, aggregator: impl Into<String>) -> Self {
        let service = Arc::new(SdkConfigService::new(sdk));
        Self::with_api(aggregator, service.clone(), service)
    }

    /// Through any APIs: `rules` lists the aggregator account's own rules.
    pub fn with_api(aggregator: impl Into<String>, api: Arc<dyn AggregatorApi>, rules: Arc<dyn ConfigApi>) -> Self {
        Self {
            aggregator: aggregator.into(),
            api,
            rules,
            shard: compliance_core::Shard::ALL,
            concurrency: 8,
            timeout: None,
        }
    }

    /// Only the accounts of this shard (each of N processes reads its own).
    pub fn with_shard(mut self, shard: compliance_core::Shard) -> Self {
        self.shard = shard;
        self
    }

    /// At most this many detail reads at once (8 by default), and this long in all.
    pub fn with_limits(mut self, concurrency: usize, timeout: Option<std::time::Duration>) -> Self {
        self.concurrency = concurrency.max(1);
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl Collector for AggregatorCollector {
    fn name(&self) -> &str {
        "aws-config-aggregator"
    }

    /// None before collection: the rules are known when it reads them.
    fn checks(&self) -> Vec<Check> {
        Vec::new()
    }

    fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let mut collection = Collection::default();
        let now = Utc::now();
        let summary =
            self.api.summary(&self.aggregator).await.map_err(|e| e.into_collect_error("aws-config-aggregator"))?;
        // Identifiers of the rules the aggregator's own account runs, by name; a denied listing only loses them.
        let own: BTreeMap<String, ConfigRule> = match self.rules.rules().await {
            Ok(rules) => rules.into_iter().map(|r| (r.name.clone(), r)).collect(),
            Err(e) => {
                let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
                let reason = format!("rules are identified by name only: {}", e.explain());
                collection.gaps.push(Gap::source("AWS Config rules of the aggregator's account", kind, reason));
                BTreeMap::new()
            }
        };
        let mut checks: BTreeMap<CheckId, Check> = BTreeMap::new();
        // Each row wanted, with its rule and check; then the details, a few at once.
        let mut wanted = Vec::new();
        for entry in summary.iter().filter(|e| self.shard.owns(&e.account)) {
            let rule = own.get(&entry.rule).cloned().unwrap_or_else(|| {
                let base = undecorated(&entry.rule);
                ConfigRule::managed(entry.rule.clone(), base.to_uppercase().replace('-', "_"))
            });
            let id = match rule.check_id() {
                Ok(id) => id,
                Err(e) => {
                    let reason = format!("no check id can be made from it: {e}");
                    collection.gaps.push(Gap::source(
                        format!("AWS Config rule {}", entry.rule),
                        GapKind::Unreadable,
                        reason,
                    ));
                    continue;
                }
            };
            let check =
                checks.entry(id.clone()).or_insert_with(|| rule_check(id.clone(), &[&rule], Severity::Medium)).clone();
            if scope.wants(&id) {
                wanted.push((entry.clone(), rule, id, check));
            }
        }
        let read = futures::stream::iter(wanted)
            .map(|(entry, rule, id, check)| async move {
                (self.api.details(&self.aggregator, &entry).await, entry, rule, id, check)
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        // (check, account, region) -> resource -> evidence: the worst verdict of copies of one rule.
        let mut judged: BTreeMap<(CheckId, String, String), BTreeMap<(String, String), Evidence>> = BTreeMap::new();
        for (results, entry, rule, id, check) in read {
            let results = match results {
                Ok(results) => results,
                Err(e) => {
                    let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
                    let what = format!("AWS Config rule {} in {} {}", entry.rule, entry.account, entry.region);
                    collection.gaps.push(
                        Gap::source(what, kind, e.explain())
                            .with_target(compliance_core::target::aws_region_id(&entry.account, &entry.region)),
                    );
                    continue;
                }
            };
            let judging = Judging {
                rule: &rule,
                check: &check,
                packs: serde_json::Value::Null,
                aggregator: Some(&self.aggregator),
                qualified: true,
                now,
                account: Some(&entry.account),
                region: Some(&entry.region),
            };
            merge(&judging, results, judged.entry((id, entry.account.clone(), entry.region.clone())).or_default());
        }
        info!(rules = summary.len(), checks = checks.len(), "AWS Config aggregator read");
        collection.checks = checks.into_values().collect();
        collection.evidence = judged.into_values().flat_map(BTreeMap::into_values).collect();
        Ok(collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_undecorated_to_the_managed_rule_name() {
        assert_eq!(undecorated("securityhub-s3-bucket-ssl-requests-only-a1b2c3"), "s3-bucket-ssl-requests-only");
        assert_eq!(undecorated("iam-password-policy-conformance-pack-x9y8z7"), "iam-password-policy");
        assert_eq!(undecorated("s3-bucket-versioning-enabled"), "s3-bucket-versioning-enabled");
    }
}
