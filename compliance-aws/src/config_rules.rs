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

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::{
    Check, CheckId, Collection, Collector, Evidence, Gap, GapKind, ResourceRef, Scope, Severity, Status,
};
use serde_json::json;
use tracing::info;

use crate::api::{ApiError, to_chrono};

/// One evaluation result, as AWS Config reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluationResult {
    /// `ResourceType` (`AWS::S3::Bucket`).
    pub resource_type: String,
    /// `ResourceId`.
    pub resource_id: String,
    /// `ComplianceType` (`COMPLIANT`, `NON_COMPLIANT`, `NOT_APPLICABLE`, `INSUFFICIENT_DATA`).
    pub compliance: String,
    /// `Annotation`.
    pub annotation: Option<String>,
    /// `OrderingTimestamp`.
    pub ordered_at: Option<DateTime<Utc>>,
    /// `ResultRecordedTime`.
    pub recorded_at: Option<DateTime<Utc>>,
    /// `ConfigRuleInvokedTime`.
    pub invoked_at: Option<DateTime<Utc>>,
}

/// A rule as `DescribeConfigRules` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRule {
    /// `ConfigRuleName`.
    pub name: String,
    /// `Source.Owner`: `AWS`, `CUSTOM_LAMBDA`, `CUSTOM_POLICY`.
    pub owner: String,
    /// `Source.SourceIdentifier` of a managed rule (`S3_BUCKET_SSL_REQUESTS_ONLY`).
    pub identifier: Option<String>,
}

impl ConfigRule {
    /// A managed rule.
    pub fn managed(name: impl Into<String>, identifier: impl Into<String>) -> Self {
        Self { name: name.into(), owner: "AWS".into(), identifier: Some(identifier.into()) }
    }

    /// A custom rule.
    pub fn custom(name: impl Into<String>) -> Self {
        Self { name: name.into(), owner: "CUSTOM_LAMBDA".into(), identifier: None }
    }

    /// The check its results are filed under: the identifier of a managed
    /// rule, the name of a custom one.
    pub fn check_id(&self) -> compliance_core::Result<CheckId> {
        match (&self.identifier, self.owner.as_str()) {
            (Some(identifier), "AWS") => CheckId::derived(MANAGED_PREFIX, identifier),
            _ => CheckId::derived(CUSTOM_PREFIX, &self.name),
        }
    }
}

/// Where managed rules' checks live: `aws.config.<identifier>`.
pub const MANAGED_PREFIX: &str = "aws.config";
/// Where custom rules' checks live: `aws.config.custom.<name>`.
pub const CUSTOM_PREFIX: &str = "aws.config.custom";

/// The AWS Config calls the collector makes.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ConfigApi: Send + Sync {
    /// `config:DescribeConfigRules`, every page.
    async fn rules(&self) -> Result<Vec<ConfigRule>, ApiError>;
    /// `config:GetComplianceDetailsByConfigRule`, one page.
    async fn compliance_page(
        &self,
        rule: &str,
        next_token: Option<String>,
    ) -> Result<(Vec<EvaluationResult>, Option<String>), ApiError>;
}

/// [`ConfigApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkConfigService {
    client: aws_sdk_config::Client,
}

impl SdkConfigService {
    /// From an SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_config::Client::new(sdk) }
    }

    pub(crate) fn client(&self) -> &aws_sdk_config::Client {
        &self.client
    }
}

#[async_trait]
impl ConfigApi for SdkConfigService {
    async fn rules(&self) -> Result<Vec<ConfigRule>, ApiError> {
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_config_rules()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("config:DescribeConfigRules", e))?;
            rules.extend(out.config_rules().iter().filter_map(|r| {
                let source = r.source();
                Some(ConfigRule {
                    name: r.config_rule_name()?.to_owned(),
                    owner: source.map(|s| s.owner().as_str().to_owned()).unwrap_or_default(),
                    identifier: source.and_then(|s| s.source_identifier()).map(str::to_owned),
                })
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(rules),
            }
        }
    }

    async fn compliance_page(
        &self,
        rule: &str,
        next_token: Option<String>,
    ) -> Result<(Vec<EvaluationResult>, Option<String>), ApiError> {
        let out = self
            .client
            .get_compliance_details_by_config_rule()
            .config_rule_name(rule)
            .limit(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("config:GetComplianceDetailsByConfigRule", e))?;
        let results = out
            .evaluation_results()
            .iter()
            .map(|r| {
                let id = r.evaluation_result_identifier();
                let q = id.and_then(|i| i.evaluation_result_qualifier());
                EvaluationResult {
                    resource_type: q.and_then(|q| q.resource_type()).unwrap_or_default().to_owned(),
                    resource_id: q.and_then(|q| q.resource_id()).unwrap_or_default().to_owned(),
                    compliance: r.compliance_type().map(|c| c.as_str().to_owned()).unwrap_or_default(),
                    annotation: r.annotation().map(str::to_owned),
                    ordered_at: id.and_then(|i| i.ordering_timestamp()).and_then(to_chrono),
                    recorded_at: r.result_recorded_time().and_then(to_chrono),
                    invoked_at: r.config_rule_invoked_time().and_then(to_chrono),
                }
            })
            .collect();
        Ok((results, out.next_token().filter(|t| !t.is_empty()).map(str::to_owned)))
    }
}

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
        Self::with_api(Arc::new(SdkConfigService::new(sdk)), rules, region)
    }

    /// For every rule in the account and region, through the SDK. The
    /// rules are listed when the run collects, not here: the listing is
    /// bounded by the engine's timeout, and a denied listing is a gap.
    pub fn discover(sdk: &aws_config::SdkConfig) -> Self {
        Self::discovering(Arc::new(SdkConfigService::new(sdk)), sdk.region().map(|r| r.to_string()))
    }

    /// For every rule the account has when collecting, through any [`ConfigApi`].
    pub fn discovering(api: Arc<dyn ConfigApi>, region: Option<String>) -> Self {
        Self { api, names: Vec::new(), severities: BTreeMap::new(), region }
    }

    /// For the rules of these names, through any [`ConfigApi`]. A name the
    /// account does not have is a gap at collection.
    pub fn with_api<I: IntoIterator<Item = S>, S: Into<String>>(
        api: Arc<dyn ConfigApi>,
        rules: I,
        region: Option<String>,
    ) -> compliance_core::Result<Self> {
        Ok(Self { api, names: rules.into_iter().map(Into::into).collect(), severities: BTreeMap::new(), region })
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
                self.read_rule(rule, &check, now, &mut judged, &mut collection.gaps).await;
            }
            collection.evidence.extend(judged.into_values());
        }
        Ok(collection)
    }
}

impl ConfigRulesCollector {
    /// Every page of one rule's results, merged into `judged`.
    async fn read_rule(
        &self,
        rule: &ConfigRule,
        check: &Check,
        now: DateTime<Utc>,
        judged: &mut BTreeMap<(String, String), Evidence>,
        gaps: &mut Vec<Gap>,
    ) {
        let mut token = None;
        let mut pages = 0;
        let mut resources: BTreeMap<(String, String), Arc<ResourceRef>> = BTreeMap::new();
        loop {
            let (results, next) = match self.api.compliance_page(&rule.name, token.take()).await {
                Ok(page) => page,
                Err(e) => {
                    let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
                    gaps.push(Gap::source(format!("AWS Config rule {}", rule.name), kind, e.explain()));
                    break;
                }
            };
            pages += 1;
            for r in results {
                let key = (r.resource_type.clone(), r.resource_id.clone());
                let resource = resources
                    .entry(key.clone())
                    .or_insert_with(|| {
                        Arc::new(
                            ResourceRef::new(
                                "aws",
                                r.resource_type.clone(),
                                format!("{}/{}", r.resource_type, r.resource_id),
                                r.resource_id.clone(),
                            )
                            .with_account_region(None, self.region.clone()),
                        )
                    })
                    .clone();
                let status = status_of(&r.compliance);
                let message = match (&r.annotation, status) {
                    (Some(a), _) => format!("{}: {a}", r.compliance),
                    (None, Status::Error) => format!("{}: AWS Config could not judge the resource", r.compliance),
                    (None, _) => r.compliance.clone(),
                };
                let this_rule =
                    json!({ "name": rule.name, "compliance_type": r.compliance, "annotation": r.annotation });
                match judged.get_mut(&key) {
                    Some(existing) => {
                        let worse = rank(status) > rank(existing.status);
                        if let Some(list) = existing.details["rules"].as_array_mut() {
                            list.push(this_rule);
                        }
                        if worse {
                            let rules = existing.details["rules"].take();
                            *existing = Evidence::new(check, resource, status, message)
                                .with_details(details(rule, &r, rules))
                                .observed_at(now);
                        }
                    }
                    None => {
                        let evidence = Evidence::new(check, resource, status, message)
                            .with_details(details(rule, &r, json!([this_rule])))
                            .observed_at(now);
                        judged.insert(key, evidence);
                    }
                }
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        info!(rule = rule.name, pages, resources = resources.len(), "AWS Config rule read");
    }
}

/// The details of one result: the rule that gave the verdict, and every
/// rule of the check that judged the resource.
fn details(rule: &ConfigRule, r: &EvaluationResult, rules: serde_json::Value) -> serde_json::Value {
    json!({
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
}
