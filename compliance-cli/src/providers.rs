//! Flags to provider configuration sections: the one place where the
//! command's flags meet the providers. Everything else goes through
//! `compliance_rs::registry()`.

use compliance_aws::AwsConfig;
use compliance_core::provider::{Sections, Wiring};
use compliance_k8s::{FixDefaults, K8sConfig};

use crate::UsageError;
use crate::args::{AwsArgs, ScanArgs};

/// The `k8s` section of a scan, when it asks for anything Kubernetes.
pub fn k8s_section(args: &ScanArgs) -> Option<K8sConfig> {
    if args.k8s_manifests.is_empty() && !args.k8s_cluster && args.rego_policies.is_empty() {
        return None;
    }
    let mut config = K8sConfig::default();
    config.manifests = args.k8s_manifests.clone();
    config.cluster = args.k8s_cluster;
    // One context keeps the single-cluster wiring; several are a fleet of clusters.
    match args.k8s_context.as_slice() {
        [one] => config.context = Some(one.clone()),
        many => config.contexts = many.to_vec(),
    }
    config.all_contexts = args.k8s_all_contexts;
    config.shard = args.shard;
    config.namespaces = args.k8s_namespaces.clone();
    config.required_labels = args.k8s_required_labels.clone();
    config.rego_policies = args.rego_policies.clone();
    config.rego_eval_limit_ms = args.rego_eval_limit_ms;
    Some(config)
}

/// How to reach AWS, as the provider takes it.
pub fn aws_connection(args: &AwsArgs) -> AwsConfig {
    let mut config = AwsConfig::default();
    config.endpoint_url = args.aws_endpoint_url.clone();
    config.region = args.aws_region.clone();
    config.max_attempts = args.aws_max_attempts;
    config.call_timeout_secs = args.aws_call_timeout;
    config
}

/// The `aws` section of a scan, when it asks for anything AWS.
pub fn aws_section(args: &ScanArgs) -> Option<AwsConfig> {
    if !args.aws && args.terraform.is_empty() {
        return None;
    }
    let mut config = aws_connection(&args.aws_connection);
    config.account = args.aws;
    config.terraform = args.terraform.clone();
    config.config_rules = args.aws_config_rules.clone();
    config.config_global_region = args.aws_config_global_region.clone();
    config.inactive_days = args.aws_inactive_days;
    config.bucket_concurrency = args.aws_bucket_concurrency;
    config.accounts_file = args.aws_accounts.clone();
    config.organization = args.aws_organization;
    config.organizational_units = args.aws_ous.clone();
    config.role_name = args.aws_role_name.clone();
    config.external_id = args.aws_external_id.clone();
    config.regions = args.aws_regions.clone();
    config.account_concurrency = args.aws_account_concurrency;
    config.region_concurrency = args.aws_region_concurrency;
    config.shard = args.shard;
    config.target_timeout_secs = args.aws_target_timeout;
    config.fleet_timeout_secs = args.aws_fleet_timeout;
    config.config_aggregator = args.aws_config_aggregator.clone();
    Some(config)
}

/// Sections from typed configurations.
pub fn sections(k8s: Option<K8sConfig>, aws: Option<AwsConfig>) -> Result<Sections, UsageError> {
    let mut sections = Sections::new();
    let value = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| UsageError(e.to_string()));
    if let Some(k8s) = k8s {
        sections.insert("k8s".into(), value(serde_json::to_value(k8s))?);
    }
    if let Some(aws) = aws {
        sections.insert("aws".into(), value(serde_json::to_value(aws))?);
    }
    Ok(sections)
}

/// Builds the providers; a configuration error is a usage error.
pub async fn build(sections: &Sections) -> Result<Wiring, UsageError> {
    compliance_rs::registry().build(sections).await.map_err(|e| UsageError(e.to_string()))
}

/// The remediators for live objects (a kube context) and cloud resources
/// (an AWS connection), with fix values: only the providers asked for.
pub async fn remediators(
    kube_context: Option<Option<String>>,
    aws: Option<AwsConfig>,
    fix: FixDefaults,
) -> Result<compliance_core::Engine, UsageError> {
    let k8s = kube_context.map(|context| {
        let mut config = K8sConfig::default();
        config.cluster = true;
        config.context = context;
        config.fix = fix;
        config
    });
    let aws = aws.map(|mut config| {
        config.account = true;
        config.remediators_only = true;
        config
    });
    let wiring = build(&sections(k8s, aws)?).await?;
    let mut engine = compliance_core::Engine::new();
    for r in wiring.remediators {
        engine = engine.with_remediator(r);
    }
    Ok(engine)
}
