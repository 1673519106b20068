//! AWS Config rule compliance: every evaluation result of every rule (or of
//! the rules named) becomes evidence for the evaluated resource.
//!
//! A managed rule is filed under its identifier, whatever its name: the
//! rule `securityhub-s3-bucket-ssl-requests-only-a1b2c3` (Security Hub's
//! copy of `S3_BUCKET_SSL_REQUESTS_ONLY`) gives evidence of the check
//! `aws.config.s3-bucket-ssl-requests-only`, as the original does, so its
//! results land on the controls `compliance_report::aws_config_rules` maps
//! and aggregate across accounts. A custom rule (Lambda, Guard) is filed
//! under `aws.config.custom.<name>`. The rule's own name is in the details;
//! where several rules of one identifier judge one resource, there is one
//! evidence with the worst verdict and every rule's result in `rules`.
//!
//! Conformance packs are read too (`DescribeConformancePacks`,
//! `DescribeConformancePackCompliance`, every page): the evidence of a
//! pack's rule names the pack, the rule's compliance in it, and the
//! `Controls` the pack declares for the rule, and those controls are mapped
//! where a framework has them ([`compliance_core::DeclaredControl`]).
//! Results are read per rule for every rule, pack or not:
//! `GetConformancePackComplianceDetails` returns only compliant and
//! non-compliant results, and the others are evidence too.
//!
//! - `api`: what AWS Config returns and the calls ([`ConfigApi`]);
//!   `packs`: the conformance packs' rules and controls.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::{
    Check, CheckId, Collection, Collector, Evidence, Gap, GapKind, ResourceRef, Scope, Severity, Status,
};
use serde_json::json;
use tracing::info;

mod aggregator;
mod api;
mod packs;

pub use aggregator::{AggregateRule, AggregatorApi, AggregatorCollector};
#[cfg(test)]
pub use api::MockConfigApi;
pub use api::{CUSTOM_PREFIX, ConfigApi, ConfigRule, EvaluationResult, MANAGED_PREFIX, PackRule, SdkConfigService};
use packs::Packs;

/// Maps `ComplianceType` to a status: `COMPLIANT` pass, `NON_COMPLIANT`
/// fail, `NOT_APPLICABLE` not applicable, `INSUFFICIENT_DATA` (or anything
/// else) error, since the resource was not judged.
pub fn status_of(compliance: &str) -> Status {
    match compliance {
        "COMPLIANT" => Status::Pass,
        "NON_COMPLIANT" => Status::Fail,
        "NOT_APPLICABLE" => Status::NotApplicable,
        _ => Status::Error,
    }
}

/// Collects the results of AWS Config rules.
///
/// ```no_run
/// use compliance_aws::config_rules::ConfigRulesCollector;
/// # async fn demo() -> compliance_core::Result<()> {
/// let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// // Every rule of the account and region, listed when the run collects
/// // (within the engine's timeout):
/// let all = ConfigRulesCollector::discover(&sdk);
/// // Or only the rules of these names:
/// let some = ConfigRulesCollector::new(&sdk, ["s3-bucket-ssl-requests-only"])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConfigRulesCollector {
    api: Arc<dyn ConfigApi>,
    /// Only the rules of these names (all when empty).
    names: Vec<String>,
    /// Severities set for rules by name.
    severities: BTreeMap<String, Severity>,
    region: Option<String>,
    /// The account evidence names.
    account: crate::AccountGuard,
    /// Resource ids name the account and region.
    qualified_ids: bool,
}

fn rule_check(id: CheckId, rules: &[&ConfigRule], severity: Severity) -> Check {
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let (title, what) = match rules.first().and_then(|r| r.identifier.as_deref().filter(|_| r.owner == "AWS")) {
        Some(identifier) => {
            (format!("AWS Config managed rule {identifier} is compliant"), format!("the managed rule {identifier}"))
        }
        None => (format!("AWS Config custom rule {} is compliant", names.join(", ")), "the custom rule".to_owned()),
    };
    Check::from_id(id, title, severity, "AWSResource")
        .with_rationale(format!(
            "AWS Config evaluates resources continuously with {what}; its findings are evidence as recorded by AWS."
        ))
        .with_remediation("Fix the resources AWS Config reports as NON_COMPLIANT; see the rule's documentation.")
        .with_reference(format!("AWS Config rule(s) {}", names.join(", ")))
}

/// How bad a verdict is, to keep the worst of several rules on one resource.
fn rank(status: Status) -> u8 {
    match status {
        Status::Fail => 3,
        Status::Error => 2,
        Status::Pass => 1,
        _ => 0,
    }
}

impl ConfigRulesCollector {
    /// For the rules of these names, through the SDK.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(
        sdk: &aws_config::SdkConfig,
        rules: I,
    ) -> compliance_core::Result<Self> {
        let region = sdk.region().map(|r| r.to_string());
        Ok(Self::with_api(Arc::new(SdkConfigService::new(sdk)), rules, region)?
            .with_account(crate::AccountGuard::of_credentials(sdk)))
    }

    /// For every rule in the account and region, through the SDK. The
    /// rules are listed when the run collects, not here: the listing is
    /// bounded by the engine's timeout, and a denied listing is a gap.
    pub fn discover(sdk: &aws_config::SdkConfig) -> Self {
        Self::discovering(Arc::new(SdkConfigService::new(sdk)), sdk.region().map(|r| r.to_string()))
            .with_account(crate::AccountGuard::of_credentials(sdk))
    }

    /// Resource ids that name the account and region
    /// (`aws-config:<account>:<region>:<type>/<id>`), for runs of many
    /// accounts and regions; one account's are `<type>/<id>`.
    pub fn with_qualified_ids(mut self) -> Self {
        self.qualified_ids = true;
        self
    }

    /// The account evidence names (the credentials' by default through the
    /// SDK; none through another [`ConfigApi`]).
    pub fn with_account(mut self, account: crate::AccountGuard) -> Self {
        self.account = account;
        self
    }

    /// For every rule the account has when collecting, through any [`ConfigApi`].
    pub fn discovering(api: Arc<dyn ConfigApi>, region: Option<String>) -> Self {
        Self {
            api,
            names: Vec::new(),
            severities: BTreeMap::new(),
            region,
            account: crate::AccountGuard::unchecked(),
            qualified_ids: false,
        }
    }

    /// For the rules of these names, through any [`ConfigApi`]. A name the
    /// account does not have is a gap at collection.
    pub fn with_api<I: IntoIterator<Item = S>, S: Into<String>>(
        api: Arc<dyn ConfigApi>,
        rules: I,
        region: Option<String>,
    ) -> compliance_core::Result<Self> {
        Ok(Self {
            api,
            names: rules.into_iter().map(Into::into).collect(),
            severities: BTreeMap::new(),
            region,
            account: crate::AccountGuard::unchecked(),
            qualified_ids: false,
        })
    }

    /// Sets the severity of failures of one rule, by name (medium by default).
    pub fn with_severity(mut self, rule: &str, severity: Severity) -> compliance_core::Result<Self> {
        self.severities.insert(rule.to_owned(), severity);
        Ok(self)
    }
}

#[async_trait]
impl Collector for ConfigRulesCollector {
    fn name(&self) -> &str {
        "aws-config"
    }

    /// None before collection: the account's rules (and so their
    /// identifiers) are listed when the run collects.
    fn checks(&self) -> Vec<Check> {
        Vec::new()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let mut collection = Collection::default();
        let now = Utc::now();
        // Unknown (the STS call failed) leaves the account out, as the fleet then fills it in.
        let account = self.account.account().await.ok().flatten();
        let mut listed = self.api.rules().await.map_err(|e| e.into_collect_error("aws-config"))?;
        if !self.names.is_empty() {
            for missing in self.names.iter().filter(|n| !listed.iter().any(|r| &r.name == *n)) {
                let reason = "no rule of that name in this account and region (NoSuchConfigRuleException)";
                collection.gaps.push(Gap::source(format!("AWS Config rule {missing}"), GapKind::Unreadable, reason));
            }
            listed.retain(|r| self.names.contains(&r.name));
        }
        // Rules by check, in the order listed; a name a check id cannot be made from is a gap.
        let mut by_check: Vec<(CheckId, Vec<&ConfigRule>)> = Vec::new();
        for rule in &listed {
            match rule.check_id() {
                Ok(id) => match by_check.iter_mut().find(|(c, _)| *c == id) {
                    Some((_, rules)) => rules.push(rule),
                    None => by_check.push((id, vec![rule])),
                },
                Err(e) => collection.gaps.push(Gap::source(
                    format!("AWS Config rule {}", rule.name),
                    GapKind::Unreadable,
                    format!("no check id can be made from it: {e}"),
                )),
            }
        }
        info!(rules = listed.len(), checks = by_check.len(), "AWS Config rules listed");
        let wanted: BTreeMap<&str, (&ConfigRule, CheckId)> = by_check
            .iter()
            .filter(|(id, _)| scope.wants(id))
            .flat_map(|(id, rules)| rules.iter().map(move |r| (r.name.as_str(), (*r, id.clone()))))
            .collect();
        let mut packs = if wanted.is_empty() {
            Packs::default()
        } else {
            Packs::read(self.api.as_ref(), &wanted, &mut collection.gaps).await
        };
        collection.declared_controls = std::mem::take(&mut packs.declared);
        for (id, rules) in &by_check {
            let severity = rules.iter().find_map(|r| self.severities.get(&r.name)).copied().unwrap_or(Severity::Medium);
            let check = rule_check(id.clone(), rules, severity);
            collection.checks.push(check.clone());
            if !scope.wants(&check.id) {
                continue;
            }
            // (resource type, resource id) -> its evidence, the worst verdict of the check's rules.
            let mut judged: BTreeMap<(String, String), Evidence> = BTreeMap::new();
            for rule in rules {
                let results = match self.read_rule(rule).await {
                    Ok(results) => results,
                    Err(gap) => {
                        collection.gaps.push(gap);
                        continue;
                    }
                };
                let judging = Judging {
                    rule,
                    check: &check,
                    packs: packs.details_of(&rule.name),
                    now,
                    account: account.as_deref(),
                    region: self.region.as_deref(),
                    aggregator: None,
                    qualified: self.qualified_ids,
                };
                merge(&judging, results, &mut judged);
            }
            collection.evidence.extend(judged.into_values());
        }
        Ok(collection)
    }
}

/// One rule's results being turned into evidence of its check.
pub(crate) struct Judging<'a> {
    /// The account, when known.
    pub(crate) account: Option<&'a str>,
    /// The region, when known.
    pub(crate) region: Option<&'a str>,
    pub(crate) rule: &'a ConfigRule,
    pub(crate) check: &'a Check,
    /// The packs the rule belongs to, with their controls (`null` when none).
    pub(crate) packs: serde_json::Value,
    /// The aggregator the results came through, if any.
    pub(crate) aggregator: Option<&'a str>,
    /// Resource ids name the account and region (results of many accounts in one run).
    pub(crate) qualified: bool,
    pub(crate) now: DateTime<Utc>,
}

impl ConfigRulesCollector {
    /// Every page of one rule's results; a gap naming the rule when a page
    /// cannot be read (the pages before it are not judged alone).
    async fn read_rule(&self, rule: &ConfigRule) -> Result<Vec<EvaluationResult>, Gap> {
        let mut token = None;
        let mut pages = 0;
        let mut all = Vec::new();
        loop {
            let (results, next) = self.api.compliance_page(&rule.name, token.take()).await.map_err(|e| {
                let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
                Gap::source(format!("AWS Config rule {}", rule.name), kind, e.explain())
            })?;
            pages += 1;
            all.extend(results);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        info!(rule = rule.name, pages, results = all.len(), "AWS Config rule read");
        Ok(all)
    }
}

/// One rule's results merged into `judged`: one evidence per resource,
/// the worst verdict of the check's rules.
pub(crate) fn merge(
    judging: &Judging<'_>,
    results: Vec<EvaluationResult>,
    judged: &mut BTreeMap<(String, String), Evidence>,
) {
    let Judging { rule, check, packs, now, account, region, aggregator, qualified } = judging;
    let mut resources: BTreeMap<(String, String), Arc<ResourceRef>> = BTreeMap::new();
    for r in results {
        let key = (r.resource_type.clone(), r.resource_id.clone());
        let resource = resources
            .entry(key.clone())
            .or_insert_with(|| {
                // AWS Config names a resource by account, region, type and id: among many accounts
                // and regions, so does its id. One account's keeps the shorter id waivers name.
                let id = match (qualified, account) {
                    (true, Some(account)) => format!(
                        "aws-config:{account}:{}:{}/{}",
                        region.unwrap_or_default(),
                        r.resource_type,
                        r.resource_id
                    ),
                    _ => format!("{}/{}", r.resource_type, r.resource_id),
                };
                Arc::new(
                    ResourceRef::new("aws", r.resource_type.clone(), id, r.resource_id.clone())
                        .with_account_region(account.map(str::to_owned), region.map(str::to_owned)),
                )
            })
            .clone();
        let status = status_of(&r.compliance);
        let message = match (&r.annotation, status) {
            (Some(a), _) => format!("{}: {a}", r.compliance),
            (None, Status::Error) => format!("{}: AWS Config could not judge the resource", r.compliance),
            (None, _) => r.compliance.clone(),
        };
        let this_rule = json!({ "name": rule.name, "compliance_type": r.compliance, "annotation": r.annotation, "conformance_packs": packs });
        match judged.get_mut(&key) {
            Some(existing) => {
                let worse = rank(status) > rank(existing.status);
                if let Some(list) = existing.details["rules"].as_array_mut() {
                    list.push(this_rule);
                }
                if worse {
                    let rules = existing.details["rules"].take();
                    *existing = Evidence::new(check, resource, status, message)
                        .with_details(details(rule, &r, packs, *aggregator, rules))
                        .observed_at(*now);
                }
            }
            None => {
                let evidence = Evidence::new(check, resource, status, message)
                    .with_details(details(rule, &r, packs, *aggregator, json!([this_rule])))
                    .observed_at(*now);
                judged.insert(key, evidence);
            }
        }
    }
}

/// The details of one result: the rule that gave the verdict, and every
/// rule of the check that judged the resource.
fn details(
    rule: &ConfigRule,
    r: &EvaluationResult,
    packs: &serde_json::Value,
    aggregator: Option<&str>,
    rules: serde_json::Value,
) -> serde_json::Value {
    json!({
        "aggregator": aggregator,
        "conformance_packs": packs,
        "config_rule": rule.name,
        "source_identifier": rule.identifier,
        "owner": rule.owner,
        "compliance_type": r.compliance,
        "resource_type": r.resource_type,
        "resource_id": r.resource_id,
        "annotation": r.annotation,
        "ordering_timestamp": r.ordered_at,
        "result_recorded_time": r.recorded_at,
        "config_rule_invoked_time": r.invoked_at,
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiError;

    #[test]
    fn ids_and_statuses() -> compliance_core::Result<()> {
        let id = |r: ConfigRule| r.check_id().map(|c| c.to_string());
        assert_eq!(
            id(ConfigRule::managed("s3-bucket-ssl-requests-only", "S3_BUCKET_SSL_REQUESTS_ONLY"))?,
            "aws.config.s3-bucket-ssl-requests-only"
        );
        // Security Hub's renamed copy is the same check.
        assert_eq!(
            id(ConfigRule::managed("securityhub-s3-bucket-ssl-requests-only-a1b2c3", "S3_BUCKET_SSL_REQUESTS_ONLY"))?,
            "aws.config.s3-bucket-ssl-requests-only"
        );
        assert_eq!(id(ConfigRule::custom("My_Rule-2"))?, "aws.config.custom.my-rule-2");
        assert_eq!(status_of("COMPLIANT"), Status::Pass);
        assert_eq!(status_of("NON_COMPLIANT"), Status::Fail);
        assert_eq!(status_of("NOT_APPLICABLE"), Status::NotApplicable);
        assert_eq!(status_of("INSUFFICIENT_DATA"), Status::Error);
        Ok(())
    }

    #[tokio::test]
    async fn a_denied_rule_is_a_gap_and_other_rules_go_on() -> compliance_core::Result<()> {
        let mut api = MockConfigApi::new();
        api.expect_conformance_packs().returning(|| Ok(Vec::new()));
        api.expect_rules().returning(|| Ok(vec![ConfigRule::custom("secret-rule"), ConfigRule::custom("open-rule")]));
        api.expect_compliance_page().returning(|rule, _| {
            if rule == "secret-rule" {
                Err(ApiError::new(
                    "config:GetComplianceDetailsByConfigRule",
                    Some("AccessDeniedException"),
                    "no",
                    Some(400),
                ))
            } else {
                Ok((
                    vec![EvaluationResult {
                        resource_type: "AWS::S3::Bucket".into(),
                        resource_id: "logs".into(),
                        compliance: "INSUFFICIENT_DATA".into(),
                        annotation: None,
                        ordered_at: None,
                        recorded_at: None,
                        invoked_at: None,
                    }],
                    None,
                ))
            }
        });
        let collector =
            ConfigRulesCollector::with_api(Arc::new(api), ["secret-rule", "open-rule"], Some("eu-west-1".into()))?;
        let c = collector.collect(&Scope::all()).await?;
        assert_eq!(c.gaps.len(), 1);
        assert_eq!(c.gaps[0].kind, GapKind::Denied);
        assert!(c.gaps[0].reason.contains("config:GetComplianceDetailsByConfigRule permission"));
        assert_eq!(c.evidence.len(), 1);
        assert_eq!(c.evidence[0].status, Status::Error, "insufficient data is a gap in the evidence, not a pass");
        assert_eq!(c.evidence[0].resource.region.as_deref(), Some("eu-west-1"));
        Ok(())
    }

    fn result(resource: &str, compliance: &str) -> EvaluationResult {
        EvaluationResult {
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: resource.into(),
            compliance: compliance.into(),
            annotation: None,
            ordered_at: None,
            recorded_at: None,
            invoked_at: None,
        }
    }

    #[tokio::test]
    async fn copies_of_one_managed_rule_give_one_evidence_per_resource_with_the_worst_verdict()
    -> compliance_core::Result<()> {
        let mut api = MockConfigApi::new();
        api.expect_conformance_packs().returning(|| Ok(Vec::new()));
        api.expect_rules().returning(|| {
            Ok(vec![
                ConfigRule::managed("s3-bucket-ssl-requests-only", "S3_BUCKET_SSL_REQUESTS_ONLY"),
                ConfigRule::managed("securityhub-s3-bucket-ssl-requests-only-x1", "S3_BUCKET_SSL_REQUESTS_ONLY"),
            ])
        });
        api.expect_compliance_page().returning(|rule, _| {
            Ok(if rule == "s3-bucket-ssl-requests-only" {
                (vec![result("a", "COMPLIANT"), result("b", "COMPLIANT")], None)
            } else {
                (vec![result("a", "NON_COMPLIANT")], None)
            })
        });
        let c = ConfigRulesCollector::discovering(Arc::new(api), None).collect(&Scope::all()).await?;
        assert_eq!(c.checks.len(), 1);
        assert_eq!(c.evidence.len(), 2, "one per resource");
        let a = c
            .evidence
            .iter()
            .find(|e| e.resource.name == "a")
            .ok_or(compliance_core::Error::collect("test", "no evidence for a"))?;
        assert_eq!(a.status, Status::Fail, "the worst of the two rules");
        assert_eq!(a.details["config_rule"], "securityhub-s3-bucket-ssl-requests-only-x1");
        assert_eq!(a.details["rules"].as_array().map(Vec::len), Some(2));
        Ok(())
    }

    #[tokio::test]
    async fn a_packs_controls_reach_the_evidence_and_a_denied_pack_read_loses_no_result() -> compliance_core::Result<()>
    {
        let mut api = MockConfigApi::new();
        api.expect_rules().returning(|| {
            Ok(vec![
                ConfigRule::managed("iam-password-policy-conformance-pack-x1", "IAM_PASSWORD_POLICY"),
                ConfigRule::managed("s3-bucket-versioning-enabled-conformance-pack-y2", "S3_BUCKET_VERSIONING_ENABLED"),
            ])
        });
        api.expect_conformance_packs().returning(|| Ok(vec!["pci".into(), "cis".into(), "locked".into()]));
        api.expect_pack_rules().returning(|pack| {
            let password = |controls: &[&str]| PackRule {
                rule: "iam-password-policy-conformance-pack-x1".into(),
                compliance: "NON_COMPLIANT".into(),
                controls: controls.iter().map(|c| (*c).to_owned()).collect(),
            };
            match pack {
                "pci" => Ok(vec![password(&["pci-dss:8.3.6", "internal-7"])]),
                // The same rule in a second pack, and a rule that came without a name.
                "cis" => Ok(vec![
                    password(&["internal-7"]),
                    PackRule { rule: String::new(), compliance: "COMPLIANT".into(), controls: vec!["x".into()] },
                ]),
                _ => Err(ApiError::new(
                    "config:DescribeConformancePackCompliance",
                    Some("AccessDeniedException"),
                    "no",
                    Some(400),
                )),
            }
        });
        // Results are read per rule, pack or not: not-applicable ones included.
        api.expect_compliance_page().returning(|rule, _| {
            Ok(if rule.starts_with("iam-password-policy") {
                (vec![result("123456789012", "NON_COMPLIANT")], None)
            } else {
                (vec![result("logs", "COMPLIANT"), result("tmp", "NOT_APPLICABLE")], None)
            })
        });
        let c = ConfigRulesCollector::discovering(Arc::new(api), None).collect(&Scope::all()).await?;
        assert_eq!(c.evidence.len(), 3);
        let sources: Vec<(GapKind, Option<&str>)> = c.gaps.iter().map(|g| (g.kind, g.source.as_deref())).collect();
        assert_eq!(
            sources,
            [
                (GapKind::Unreadable, Some("AWS Config conformance pack cis")),
                (GapKind::Denied, Some("AWS Config conformance pack locked"))
            ]
        );
        let password = c
            .evidence
            .iter()
            .find(|e| e.check_id.as_str() == "aws.config.iam-password-policy")
            .ok_or(compliance_core::Error::collect("test", "no password evidence"))?;
        assert_eq!(password.status, Status::Fail);
        let packs: Vec<&str> = password.details["conformance_packs"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(packs, ["pci", "cis"]);
        assert_eq!(password.details["conformance_packs"][0]["controls"][0], "pci-dss:8.3.6");
        assert_eq!(password.details["conformance_packs"][0]["compliance_type"], "NON_COMPLIANT");
        let declared: Vec<&str> = c.declared_controls.iter().map(|d| d.control.as_str()).collect();
        assert_eq!(declared, ["pci-dss:8.3.6", "internal-7"], "each once");
        assert!(c.declared_controls.iter().all(|d| d.check.as_str() == "aws.config.iam-password-policy"));
        Ok(())
    }
}
