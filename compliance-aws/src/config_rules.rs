//! AWS Config rule compliance: every evaluation result of every rule (or of
//! the rules named) becomes evidence for the evaluated resource, under the
//! check `aws.config.<rule-name>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::{Check, Collection, Collector, Evidence, Gap, GapKind, ResourceRef, Scope, Severity, Status};
use serde_json::json;
use tracing::info;

use crate::api::ApiError;

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

/// The AWS Config calls the collector makes.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ConfigApi: Send + Sync {
    /// `config:DescribeConfigRules`, every page: the rule names.
    async fn rule_names(&self) -> Result<Vec<String>, ApiError>;
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
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[async_trait]
impl ConfigApi for SdkConfigService {
    async fn rule_names(&self) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_config_rules()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("config:DescribeConfigRules", e))?;
            names.extend(out.config_rules().iter().filter_map(|r| r.config_rule_name().map(str::to_owned)));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(names),
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

/// The check id of a rule: `aws.config.` and the rule name in lower case
/// (rule names allow letters, digits, `-` and `_`).
pub fn check_id_for(rule: &str) -> String {
    let name: String = rule
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("{}{name}", crate::CONFIG_PREFIX)
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
/// // Or only these:
/// let some = ConfigRulesCollector::new(&sdk, ["s3-bucket-ssl-requests-only"])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConfigRulesCollector {
    api: Arc<dyn ConfigApi>,
    rules: Vec<(String, Check)>,
    /// List the account's rules when collecting (`rules` is then empty).
    discover: bool,
    /// Severities set for rules by name, for discovered rules too.
    severities: BTreeMap<String, Severity>,
    region: Option<String>,
}

fn rule_check(rule: &str, severity: Severity) -> compliance_core::Result<Check> {
    Ok(Check::new(&check_id_for(rule), format!("AWS Config rule {rule} is compliant"), severity, "AWSResource")?
        .with_rationale(format!(
            "The AWS Config rule {rule} evaluates resources continuously; its findings are evidence as recorded by AWS."
        ))
        .with_remediation(format!(
            "Fix the resources AWS Config reports as NON_COMPLIANT for {rule}; see the rule's documentation."
        ))
        .with_reference(format!("AWS Config rule {rule}")))
}

impl ConfigRulesCollector {
    /// For these rules, through the SDK.
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
        Self { api, rules: Vec::new(), discover: true, severities: BTreeMap::new(), region }
    }

    /// For these rules, through any [`ConfigApi`].
    pub fn with_api<I: IntoIterator<Item = S>, S: Into<String>>(
        api: Arc<dyn ConfigApi>,
        rules: I,
        region: Option<String>,
    ) -> compliance_core::Result<Self> {
        let rules = rules
            .into_iter()
            .map(|r| {
                let name = r.into();
                rule_check(&name, Severity::Medium).map(|c| (name, c))
            })
            .collect::<compliance_core::Result<Vec<_>>>()?;
        Ok(Self { api, rules, discover: false, severities: BTreeMap::new(), region })
    }

    /// Sets the severity of failures of one rule (medium by default).
    pub fn with_severity(mut self, rule: &str, severity: Severity) -> compliance_core::Result<Self> {
        self.severities.insert(rule.to_owned(), severity);
        for (name, check) in &mut self.rules {
            if name == rule {
                *check = rule_check(name, severity)?;
            }
        }
        Ok(self)
    }
}

#[async_trait]
impl Collector for ConfigRulesCollector {
    fn name(&self) -> &str {
        "aws-config"
    }

    fn checks(&self) -> Vec<Check> {
        self.rules.iter().map(|(_, c)| c.clone()).collect()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let mut collection = Collection::default();
        let now = Utc::now();
        let discovered;
        let rules = if self.discover {
            let names = self.api.rule_names().await.map_err(|e| e.into_collect_error("aws-config"))?;
            discovered = names
                .into_iter()
                .map(|name| {
                    let severity = self.severities.get(&name).copied().unwrap_or(Severity::Medium);
                    rule_check(&name, severity).map(|c| (name, c))
                })
                .collect::<compliance_core::Result<Vec<_>>>()?;
            collection.checks = discovered.iter().map(|(_, c)| c.clone()).collect();
            info!(rules = discovered.len(), "AWS Config rules listed");
            &discovered
        } else {
            &self.rules
        };
        for (rule, check) in rules.iter().filter(|(_, c)| scope.wants(&c.id)) {
            let mut token = None;
            let mut pages = 0;
            let mut resources: BTreeMap<(String, String), Arc<ResourceRef>> = BTreeMap::new();
            loop {
                match self.api.compliance_page(rule, token.take()).await {
                    Ok((results, next)) => {
                        pages += 1;
                        for r in results {
                            let key = (r.resource_type.clone(), r.resource_id.clone());
                            let resource = resources
                                .entry(key)
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
                                (None, Status::Error) => {
                                    format!("{}: AWS Config could not judge the resource", r.compliance)
                                }
                                (None, _) => r.compliance.clone(),
                            };
                            let details = json!({
                                "config_rule": rule,
                                "compliance_type": r.compliance,
                                "resource_type": r.resource_type,
                                "resource_id": r.resource_id,
                                "annotation": r.annotation,
                                "ordering_timestamp": r.ordered_at,
                                "result_recorded_time": r.recorded_at,
                                "config_rule_invoked_time": r.invoked_at,
                            });
                            collection.evidence.push(
                                Evidence::new(check, resource, status, message).with_details(details).observed_at(now),
                            );
                        }
                        match next {
                            Some(t) => token = Some(t),
                            None => break,
                        }
                    }
                    Err(e) => {
                        let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
                        collection.gaps.push(Gap::source(format!("AWS Config rule {rule}"), kind, e.explain()));
                        break;
                    }
                }
            }
            info!(rule, pages, resources = resources.len(), "AWS Config rule read");
        }
        Ok(collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_statuses() {
        assert_eq!(check_id_for("s3-bucket-ssl-requests-only"), "aws.config.s3-bucket-ssl-requests-only");
        assert_eq!(check_id_for("My_Rule-2"), "aws.config.my_rule-2");
        assert_eq!(status_of("COMPLIANT"), Status::Pass);
        assert_eq!(status_of("NON_COMPLIANT"), Status::Fail);
        assert_eq!(status_of("NOT_APPLICABLE"), Status::NotApplicable);
        assert_eq!(status_of("INSUFFICIENT_DATA"), Status::Error);
    }

    #[tokio::test]
    async fn a_denied_rule_is_a_gap_and_other_rules_go_on() -> compliance_core::Result<()> {
        let mut api = MockConfigApi::new();
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
}
