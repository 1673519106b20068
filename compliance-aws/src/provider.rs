//! The AWS provider: its catalogues, and the collectors and remediators one
//! serde configuration section asks for.
//!
//! ```
//! use compliance_aws::AwsProvider;
//! use compliance_core::{CheckId, Provider};
//! // AWS Config rules are discovered per account: their ids are known without a catalogue entry.
//! assert!(AwsProvider.knows(&"aws.config.s3-bucket-versioning-enabled".parse::<CheckId>()?));
//! # Ok::<(), compliance_core::Error>(())
//! ```

use std::path::PathBuf;
#[cfg(any(feature = "terraform", all(feature = "iam", feature = "s3", feature = "config")))]
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::provider::{Wiring, parse_config};
use compliance_core::{Check, CheckId, Provider};
use serde::{Deserialize, Serialize};

/// The `aws` section of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AwsConfig {
    /// Judge the account of the credentials in use: IAM, S3 and AWS Config
    /// (features `iam`, `s3`, `config`), and fix it on request.
    pub account: bool,
    /// Terraform files, folders and plans (feature `terraform`; no AWS call).
    pub terraform: Vec<PathBuf>,
    /// An endpoint instead of AWS's (an emulator, a VPC endpoint); S3 then
    /// uses path-style addressing.
    pub endpoint_url: Option<String>,
    /// The region; else the SDK's default chain (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// Attempts per call, retries included, with the SDK's standard backoff.
    pub max_attempts: u32,
    /// AWS Config rules to read; every rule of the region when empty.
    pub config_rules: Vec<String>,
    /// The region whose configuration recorder must record global resource
    /// types (IAM); without it they are reported but not judged.
    pub config_global_region: Option<String>,
    /// Read AWS Config rule compliance of every account and region from
    /// this aggregator (in the configured account and region) instead of
    /// from each account.
    pub config_aggregator: Option<String>,
    /// Days without use after which an IAM user is inactive.
    pub inactive_days: i64,
    /// Buckets judged at once.
    pub bucket_concurrency: usize,
    /// For the S3 remediator: SSE-KMS with this key instead of SSE-S3.
    pub kms_key_id: Option<String>,
    /// Build only the remediators of the account: no collector, so no AWS
    /// Config rule discovery (`compliance remediate` needs only the fixes).
    pub remediators_only: bool,
    /// Seconds to open a connection to an endpoint.
    pub connect_timeout_secs: u64,
    /// Seconds one call may take, retries included; a read that stalls
    /// longer is cut off too. An endpoint that accepts connections and never
    /// answers is then an error, not a scan that hangs.
    pub call_timeout_secs: u64,
    /// Fleet: the accounts an accounts file lists (feature `fleet`).
    pub accounts_file: Option<PathBuf>,
    /// Fleet: every ACTIVE account of the organization (feature `fleet`).
    pub organization: bool,
    /// Fleet: only the accounts under these organizational units.
    pub organizational_units: Vec<String>,
    /// Fleet: the role assumed in each account of the organization.
    pub role_name: Option<String>,
    /// Fleet: the external id the role's trust policy asks for.
    pub external_id: Option<String>,
    /// Regions to scan (`all`: every region enabled for each account); the
    /// configured region alone when empty.
    pub regions: Vec<String>,
    /// Fleet: accounts scanned at once.
    pub account_concurrency: usize,
    /// Fleet: regions of one account scanned at once.
    pub region_concurrency: usize,
    /// Fleet: only this shard of the accounts (`K/N`).
    pub shard: Option<compliance_core::target::Shard>,
    /// Fleet: seconds one collector of one account or region may take.
    pub target_timeout_secs: u64,
    /// Fleet: seconds the whole fleet may take; what finished is kept.
    pub fleet_timeout_secs: u64,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            account: false,
            terraform: Vec::new(),
            endpoint_url: None,
            region: None,
            max_attempts: 5,
            config_rules: Vec::new(),
            config_global_region: None,
            config_aggregator: None,
            inactive_days: 90,
            bucket_concurrency: 8,
            kms_key_id: None,
            remediators_only: false,
            connect_timeout_secs: 5,
            call_timeout_secs: 60,
            accounts_file: None,
            organization: false,
            organizational_units: Vec::new(),
            role_name: None,
            external_id: None,
            regions: Vec::new(),
            account_concurrency: 8,
            region_concurrency: 4,
            shard: None,
            target_timeout_secs: 600,
            fleet_timeout_secs: 6 * 3600,
        }
    }
}

impl AwsConfig {
    /// Whether more than the credentials' account in one region is asked for.
    pub fn is_fleet(&self) -> bool {
        self.organization
            || self.accounts_file.is_some()
            || self.regions.len() > 1
            || self.regions.iter().any(|r| r == "all")
    }

    /// The fleet these settings describe; an error names a wrong field.
    #[cfg(feature = "fleet")]
    pub fn fleet(&self) -> compliance_core::Result<crate::fleet::FleetConfig> {
        use crate::fleet::{Accounts, FleetConfig};
        let field = |field: &str, message: &str| compliance_core::Error::Config {
            field: format!("aws.{field}"),
            message: message.to_owned(),
            source: None,
        };
        let accounts = match (&self.accounts_file, self.organization) {
            (Some(_), true) => {
                return Err(field("organization", "give an accounts file or the organization, not both"));
            }
            (Some(path), false) => Accounts::File(path.clone()),
            (None, true) => Accounts::Organization {
                units: self.organizational_units.clone(),
                role_name: self.role_name.clone().ok_or_else(|| {
                    field("role_name", "the organization's accounts need a role to assume (--aws-role-name)")
                })?,
                external_id: self.external_id.clone(),
            },
            (None, false) => Accounts::Caller,
        };
        if !self.organizational_units.is_empty() && !self.organization {
            return Err(field(
                "organizational_units",
                "organizational units need the organization (--aws-organization)",
            ));
        }
        let mut regions: Vec<String> = Vec::new();
        for region in &self.regions {
            let valid = region == "all"
                || (region.len() <= 32
                    && region.split('-').count() >= 3
                    && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            if !valid {
                return Err(field("regions", &format!("{region:?} is not a region name (eu-west-1) nor `all`")));
            }
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
        if regions.len() > 1 && regions.iter().any(|r| r == "all") {
            return Err(field("regions", "`all` stands alone: it already means every enabled region"));
        }
        if self.external_id.is_some() && self.accounts_file.is_some() {
            return Err(field("external_id", "an accounts file gives each account's external_id"));
        }
        let mut fleet = FleetConfig::new(accounts)
            .with_regions(regions)
            .with_concurrency(self.account_concurrency, self.region_concurrency);
        fleet.shard = self.shard;
        fleet.target_timeout_secs = self.target_timeout_secs.max(1);
        fleet.run_timeout_secs = self.fleet_timeout_secs.max(1);
        Ok(fleet)
    }
}

/// AWS: the account's IAM users, S3 buckets and AWS Config rules, and
/// Terraform before it is applied.
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsProvider;

impl AwsProvider {
    /// Builds from the typed configuration.
    pub async fn build_config(&self, config: &AwsConfig) -> compliance_core::Result<Wiring> {
        #[allow(unused_mut)]
        let mut wiring = Wiring::default();
        if !config.terraform.is_empty() {
            #[cfg(feature = "terraform")]
            {
                wiring = wiring
                    .with_collector(Arc::new(crate::terraform::TerraformCollector::new(config.terraform.clone())));
            }
            #[cfg(not(feature = "terraform"))]
            return Err(unsupported("aws.terraform", "terraform"));
        }
        if config.account {
            wiring = account(config, wiring).await?;
        }
        Ok(wiring)
    }
}

#[cfg(not(all(feature = "terraform", feature = "iam", feature = "s3", feature = "config", feature = "fleet")))]
fn unsupported(field: &str, feature: &str) -> compliance_core::Error {
    compliance_core::Error::Unsupported {
        operation: field.to_owned(),
        implementer: format!("compliance-aws without feature {feature}"),
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn checks(&self) -> Vec<Check> {
        crate::checks()
    }

    fn knows(&self, id: &CheckId) -> bool {
        // AWS Config rules are discovered per account, region and run.
        #[allow(unused_mut)]
        let mut known = id.as_str().starts_with(CONFIG_PREFIX);
        #[cfg(feature = "iam")]
        {
            known = known
                || crate::iam::catalogue().contains(id)
                || crate::iam::posture::principal_catalogue().contains(id)
                || crate::iam::posture::password_catalogue().contains(id);
        }
        #[cfg(any(feature = "s3", feature = "terraform"))]
        {
            known = known || crate::s3::catalogue().contains(id);
        }
        #[cfg(feature = "s3")]
        {
            known = known || crate::s3::account::account_catalogue().contains(id);
        }
        #[cfg(feature = "cloudtrail")]
        {
            known = known
                || crate::cloudtrail::account_catalogue().contains(id)
                || crate::cloudtrail::trail_catalogue().contains(id);
        }
        known
    }

    async fn build(&self, config: &serde_json::Value) -> compliance_core::Result<Wiring> {
        let config: AwsConfig = parse_config(self.name(), config)?;
        self.build_config(&config).await
    }
}

/// The prefix of every AWS Config rule's check id.
pub const CONFIG_PREFIX: &str = "aws.config.";

/// The SDK configuration: the default credential chain, with the region,
/// endpoint and retry attempts given.
#[cfg(any(feature = "iam", feature = "s3", feature = "config"))]
pub async fn sdk_config(config: &AwsConfig) -> compliance_core::Result<aws_config::SdkConfig> {
    use std::time::Duration;

    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_config::{BehaviorVersion, Region};

    let call = Duration::from_secs(config.call_timeout_secs.max(1));
    let attempts = config.max_attempts.max(1);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
        .read_timeout(call)
        .operation_attempt_timeout(call)
        .operation_timeout(call * attempts)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(attempts))
        .timeout_config(timeouts);
    // The first of the regions asked for, when no single one is.
    if let Some(region) = config.region.as_ref().or(config.regions.iter().find(|r| *r != "all")) {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url.clone());
        // S3 Control prefixes the host with the account id: an address needs help to resolve.
        if let Some(hosts) = crate::endpoint::AccountHosts::for_endpoint(url) {
            loader = loader.http_client(crate::endpoint::http_client(hosts));
        }
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(compliance_core::Error::Config {
            field: "aws.region".into(),
            message: "no AWS region: give --aws-region or set AWS_REGION".into(),
            source: None,
        });
    }
    Ok(sdk)
}

/// The provider's collectors for one account: global ones (run once per
/// account) and regional ones (per region). A fleet runs the same.
#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
#[derive(Clone, Debug)]
struct StandardCollectors {
    config: AwsConfig,
}

#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
impl StandardCollectors {
    fn s3(&self) -> crate::s3::S3Config {
        let mut s3 = crate::s3::S3Config::default()
            .with_concurrency(self.config.bucket_concurrency)
            .with_path_style(self.config.endpoint_url.is_some());
        if let Some(key) = &self.config.kms_key_id {
            s3 = s3.with_kms_key(key.clone());
        }
        s3
    }

    /// The global collectors; their evidence names `guard`'s account (one
    /// guard, so one STS call at most for all of them).
    fn global_for(
        &self,
        sdk: &aws_config::SdkConfig,
        guard: &crate::AccountGuard,
    ) -> Vec<Arc<dyn compliance_core::Collector>> {
        use crate::iam::posture::{IamPostureCollector, PostureConfig};
        use crate::iam::{IamCollector, IamConfig};
        use crate::s3::S3Collector;
        use crate::s3::account::{AccountPublicAccessBlockCollector, SdkAccountBlock};

        #[allow(unused_mut)]
        let mut collectors: Vec<Arc<dyn compliance_core::Collector>> = vec![
            Arc::new(IamCollector::new(sdk, IamConfig::default().with_inactive_days(self.config.inactive_days))),
            Arc::new(S3Collector::new(sdk, self.s3()).with_account(guard.clone())),
            Arc::new(AccountPublicAccessBlockCollector::with_api(Arc::new(SdkAccountBlock::new(sdk)), guard.clone())),
            Arc::new(IamPostureCollector::new(sdk, PostureConfig::default()).with_account(guard.clone())),
        ];
        #[cfg(feature = "cloudtrail")]
        collectors.push(Arc::new(
            crate::cloudtrail::CloudTrailCollector::new(sdk, self.config.endpoint_url.is_some())
                .with_account(guard.clone()),
        ));
        collectors
    }

    /// The regional collectors of `sdk`'s region. `qualified`: Config
    /// resource ids name the account and region (a fleet's).
    fn regional_for(
        &self,
        sdk: &aws_config::SdkConfig,
        guard: &crate::AccountGuard,
        qualified: bool,
    ) -> Vec<Arc<dyn compliance_core::Collector>> {
        use crate::config_recorder::ConfigRecorderCollector;
        use crate::config_rules::ConfigRulesCollector;

        let mut recorder = ConfigRecorderCollector::new(sdk).with_account(guard.clone());
        if let Some(region) = &self.config.config_global_region {
            recorder = recorder.with_global_region(region.clone());
        }
        // With an aggregator, rule results come from it, once for all accounts and regions.
        if self.config.config_aggregator.is_some() {
            return vec![Arc::new(recorder)];
        }
        let rules = if self.config.config_rules.is_empty() {
            // Listed when the run collects, within the engine's timeout.
            ConfigRulesCollector::discover(sdk)
        } else {
            match ConfigRulesCollector::new(sdk, self.config.config_rules.iter().cloned()) {
                Ok(c) => c,
                Err(e) => return vec![Arc::new(recorder), Arc::new(Unavailable::new("aws-config", e))],
            }
        };
        let rules = rules.with_account(guard.clone());
        let rules = if qualified { rules.with_qualified_ids() } else { rules };
        vec![Arc::new(recorder), Arc::new(rules)]
    }
}

/// The AWS provider's collectors for each account and region, as its fleet
/// runs them (the same as for a single account).
#[cfg(feature = "fleet")]
pub fn account_collectors(config: &AwsConfig) -> Arc<dyn crate::fleet::AccountCollectors> {
    Arc::new(StandardCollectors { config: config.clone() })
}

#[cfg(feature = "fleet")]
impl crate::fleet::AccountCollectors for StandardCollectors {
    fn checks(&self) -> Vec<Check> {
        crate::checks()
    }

    fn global(&self, sdk: &aws_config::SdkConfig, account: &str) -> Vec<Arc<dyn compliance_core::Collector>> {
        self.global_for(sdk, &crate::AccountGuard::named(account))
    }

    fn regional(
        &self,
        sdk: &aws_config::SdkConfig,
        account: &str,
        _region: &str,
    ) -> Vec<Arc<dyn compliance_core::Collector>> {
        self.regional_for(sdk, &crate::AccountGuard::named(account), true)
    }
}

#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
async fn account(config: &AwsConfig, wiring: Wiring) -> compliance_core::Result<Wiring> {
    use crate::iam::IamRemediator;
    use crate::iam::posture::{PasswordPolicyRemediator, PostureConfig};
    use crate::s3::S3Remediator;
    use crate::s3::account::AccountPublicAccessBlockRemediator;

    let sdk = sdk_config(config).await?;
    let standard = StandardCollectors { config: config.clone() };
    // Remediators act with the credentials in use, on evidence of their own account only.
    let wiring = wiring
        .with_remediator(Arc::new(S3Remediator::new(&sdk, standard.s3())))
        .with_remediator(Arc::new(AccountPublicAccessBlockRemediator::new(&sdk)))
        .with_remediator(Arc::new(IamRemediator::new(&sdk)))
        .with_remediator(Arc::new(PasswordPolicyRemediator::new(&sdk, PostureConfig::default())));
    #[cfg(feature = "cloudtrail")]
    let wiring = wiring.with_remediator(Arc::new(crate::cloudtrail::LogFileValidationRemediator::new(&sdk)));
    if config.remediators_only {
        return Ok(wiring);
    }
    let wiring = match &config.config_aggregator {
        Some(name) => {
            let aggregator = crate::config_rules::AggregatorCollector::new(&sdk, name.clone())
                .with_shard(config.shard.unwrap_or(compliance_core::Shard::ALL))
                .with_limits(
                    config.account_concurrency,
                    Some(std::time::Duration::from_secs(config.fleet_timeout_secs.max(1))),
                );
            wiring.with_collector(Arc::new(aggregator))
        }
        None => wiring,
    };
    if config.is_fleet() {
        #[cfg(feature = "fleet")]
        {
            let fleet = crate::fleet::FleetCollector::new(&sdk, config.fleet()?, Arc::new(standard));
            return Ok(wiring.with_collector(Arc::new(fleet)));
        }
        #[cfg(not(feature = "fleet"))]
        return Err(unsupported("aws.organization, aws.accounts_file, aws.regions", "fleet"));
    }
    let mut wiring = wiring;
    // One guard: the credentials' account is learned once for every collector.
    let guard = crate::AccountGuard::of_credentials(&sdk);
    for collector in standard.global_for(&sdk, &guard).into_iter().chain(standard.regional_for(&sdk, &guard, false)) {
        wiring = wiring.with_collector(collector);
    }
    Ok(wiring)
}

#[cfg(not(all(feature = "iam", feature = "s3", feature = "config")))]
async fn account(_: &AwsConfig, _: Wiring) -> compliance_core::Result<Wiring> {
    Err(unsupported("aws.account", "iam, s3 and config"))
}

/// A source that could not even be set up: each collection fails with the
/// setup's error, so every run shows it as a gap instead of stopping.
#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
struct Unavailable {
    name: &'static str,
    reason: String,
    permission: Option<String>,
    cause: Arc<compliance_core::Error>,
}

#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
impl Unavailable {
    fn new(name: &'static str, cause: compliance_core::Error) -> Self {
        use compliance_core::Error;
        let (reason, permission) = match &cause {
            Error::Collect { reason, .. } => (reason.clone(), None),
            Error::PermissionDenied { reason, permission, .. } => (reason.clone(), Some(permission.clone())),
            other => (other.to_string(), None),
        };
        Self { name, reason, permission, cause: Arc::new(cause) }
    }
}

/// The setup's error as the source of each run's error: its own text is
/// already the reason, so the chain goes on with its cause.
#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
#[derive(Debug)]
struct SetUp(Arc<compliance_core::Error>);

#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
impl std::fmt::Display for SetUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("when the collector was set up")
    }
}

#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
impl std::error::Error for SetUp {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self.0.as_ref())
    }
}

#[cfg(all(feature = "iam", feature = "s3", feature = "config"))]
#[async_trait]
impl compliance_core::Collector for Unavailable {
    fn name(&self) -> &str {
        self.name
    }
    fn checks(&self) -> Vec<Check> {
        Vec::new()
    }
    async fn collect(&self, _scope: &compliance_core::Scope) -> compliance_core::Result<compliance_core::Collection> {
        let source: compliance_core::BoxError = Box::new(SetUp(Arc::clone(&self.cause)));
        Err(match &self.permission {
            Some(permission) => compliance_core::Error::PermissionDenied {
                collector: self.name.to_owned(),
                reason: self.reason.clone(),
                permission: permission.clone(),
                source: Some(source),
            },
            None => compliance_core::Error::collect_from(self.name, self.reason.clone(), source),
        })
    }
}
