//! What AWS Config returns ([`ConfigRule`], [`EvaluationResult`], a
//! conformance pack's rules), and the calls that read it ([`ConfigApi`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::CheckId;

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

impl EvaluationResult {
    /// From the fields AWS Config answers, alike for a rule's results and an aggregator's.
    pub(crate) fn from_parts(
        id: Option<&aws_sdk_config::types::EvaluationResultIdentifier>,
        compliance: Option<&aws_sdk_config::types::ComplianceType>,
        annotation: Option<&str>,
        recorded: Option<&aws_smithy_types::DateTime>,
        invoked: Option<&aws_smithy_types::DateTime>,
    ) -> Self {
        let q = id.and_then(|i| i.evaluation_result_qualifier());
        Self {
            resource_type: q.and_then(|q| q.resource_type()).unwrap_or_default().to_owned(),
            resource_id: q.and_then(|q| q.resource_id()).unwrap_or_default().to_owned(),
            compliance: compliance.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            annotation: annotation.map(str::to_owned),
            ordered_at: id.and_then(|i| i.ordering_timestamp()).and_then(to_chrono),
            recorded_at: recorded.and_then(to_chrono),
            invoked_at: invoked.and_then(to_chrono),
        }
    }
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
    /// `config:DescribeConformancePacks`, every page: the packs' names.
    async fn conformance_packs(&self) -> Result<Vec<String>, ApiError>;
    /// `config:DescribeConformancePackCompliance`, every page: each rule of
    /// the pack, with its compliance and the `Controls` the pack declares.
    /// Results are read per rule: `GetConformancePackComplianceDetails`
    /// returns only `COMPLIANT` and `NON_COMPLIANT` ones, so reading them
    /// through the pack would lose the not-applicable and insufficient-data
    /// results.
    async fn pack_rules(&self, pack: &str) -> Result<Vec<PackRule>, ApiError>;
}

/// One rule of a conformance pack, as `DescribeConformancePackCompliance` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackRule {
    /// `ConfigRuleName`.
    pub rule: String,
    /// `ComplianceType` of the rule as a whole.
    pub compliance: String,
    /// `Controls`: what the pack says the rule is evidence for (up to 20).
    pub controls: Vec<String>,
}

fn next(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(str::to_owned)
}

/// A next token equal to the one just sent would page forever: an error.
fn not_repeated(operation: &'static str, previous: &Option<String>, token: String) -> Result<String, ApiError> {
    if previous.as_deref() == Some(token.as_str()) {
        return Err(ApiError::new(operation, None, "the service answered the same NextToken twice", None));
    }
    Ok(token)
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
                EvaluationResult::from_parts(
                    r.evaluation_result_identifier(),
                    r.compliance_type(),
                    r.annotation(),
                    r.result_recorded_time(),
                    r.config_rule_invoked_time(),
                )
            })
            .collect();
        Ok((results, next(out.next_token())))
    }

    async fn conformance_packs(&self) -> Result<Vec<String>, ApiError> {
        let mut packs = Vec::new();
        let mut token = None;
        let mut previous: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_conformance_packs()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("config:DescribeConformancePacks", e))?;
            packs.extend(out.conformance_pack_details().iter().map(|p| p.conformance_pack_name().to_owned()));
            token = match next(out.next_token()) {
                Some(t) => Some(not_repeated("config:DescribeConformancePacks", &previous, t)?),
                None => return Ok(packs),
            };
            previous.clone_from(&token);
        }
    }

    async fn pack_rules(&self, pack: &str) -> Result<Vec<PackRule>, ApiError> {
        let mut rules = Vec::new();
        let mut token = None;
        let mut previous: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_conformance_pack_compliance()
                .conformance_pack_name(pack)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("config:DescribeConformancePackCompliance", e))?;
            // A rule without a name is kept (empty name): the collector reports it, never drops it.
            rules.extend(out.conformance_pack_rule_compliance_list().iter().map(|r| PackRule {
                rule: r.config_rule_name().unwrap_or_default().to_owned(),
                compliance: r.compliance_type().map(|c| c.as_str().to_owned()).unwrap_or_default(),
                controls: r.controls().to_vec(),
            }));
            token = match next(out.next_token()) {
                Some(t) => Some(not_repeated("config:DescribeConformancePackCompliance", &previous, t)?),
                None => return Ok(rules),
            };
            previous.clone_from(&token);
        }
    }
}
