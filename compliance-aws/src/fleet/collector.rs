//! [`FleetCollector`]: every account and region of a fleet in one collection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use compliance_core::target::{Shard, Target, aws_account_id, aws_region_id};
use compliance_core::{Check, Collection, Collector, Gap, GapKind, Progress, Scope};
use futures::StreamExt;
use tracing::{info, warn};

use super::accounts::{AccountSpec, read_accounts_file};
use super::org::{OrgApi, SdkOrg, accounts_under};
use super::regions::{RegionsApi, SdkRegions};
use super::{AccountCollectors, Accounts, FleetConfig};
use crate::api::ApiError;

/// The session name every assumed role shows in CloudTrail, so that an
/// account's owners can tell our reads from anything else.
pub const SESSION_NAME: &str = "compliance-rs-audit";

/// Scans many accounts and regions: global collectors once per account,
/// regional ones per region, at most `account_concurrency` accounts and
/// `region_concurrency` regions of each at once. A target that fails (a role
/// that cannot be assumed, a disabled region, a denied call) is a gap that
/// names it; the others finish.
pub struct FleetCollector {
    base: aws_config::SdkConfig,
    config: FleetConfig,
    collectors: Arc<dyn AccountCollectors>,
    org: SdkOrg,
}

impl FleetCollector {
    /// Through the SDK: `base` holds the calling account's credentials
    /// (the organization's management account, or a delegated administrator).
    pub fn new(base: &aws_config::SdkConfig, config: FleetConfig, collectors: Arc<dyn AccountCollectors>) -> Self {
        Self { base: base.clone(), config, collectors, org: SdkOrg::new(base) }
    }

    /// The accounts to scan, before sharding.
    async fn accounts(&self, caller: &str) -> Result<Vec<AccountSpec>, compliance_core::Error> {
        let collect = |reason: String| compliance_core::Error::collect("aws-fleet", reason);
        Ok(match &self.config.accounts {
            Accounts::Caller => vec![AccountSpec::new(caller)],
            Accounts::File(path) => read_accounts_file(path).map_err(collect)?,
            Accounts::Organization { units, role_name, external_id } => {
                let listed =
                    if units.is_empty() { self.org.accounts().await } else { accounts_under(&self.org, units).await }
                        .map_err(|e| e.into_collect_error("aws-fleet"))?;
                listed
                    .into_iter()
                    .filter(|a| a.state == "ACTIVE")
                    .map(|a| {
                        let mut spec = AccountSpec::new(a.id.clone()).named(a.name);
                        // The calling account is scanned with its own credentials.
                        if a.id != caller {
                            spec = spec.with_role(format!("arn:aws:iam::{}:role/{role_name}", a.id));
                            spec.external_id.clone_from(external_id);
                        }
                        spec
                    })
                    .collect()
            }
        })
    }

    /// The SDK configuration acting in one account; `Err` is its gap's reason.
    async fn account_sdk(&self, spec: &AccountSpec, caller: &str) -> Result<aws_config::SdkConfig, String> {
        let sdk = if let Some(role) = &spec.role_arn {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name(SESSION_NAME)
                .configure(&self.base);
            if let Some(id) = &spec.external_id {
                provider = provider.external_id(id.clone());
            }
            // The SDK's identity cache renews the role's credentials before they expire.
            let provider = provider.build().await;
            self.base
                .to_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                .build()
        } else if let Some(profile) = &spec.profile {
            let provider = aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(profile).build();
            self.base
                .to_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                .build()
        } else if spec.id == caller {
            self.base.clone()
        } else {
            return Err(format!(
                "no role_arn or profile for account {}, and the credentials in use are account {caller}'s",
                spec.id
            ));
        };
        // One call proves the credentials work and act in that account.
        let sts = aws_sdk_sts::Client::new(&sdk);
        let how = spec.role_arn.as_deref().map_or_else(|| "its credentials".to_owned(), |r| format!("role {r}"));
        match sts.get_caller_identity().send().await {
            Ok(identity) if identity.account() == Some(spec.id.as_str()) => Ok(sdk),
            Ok(identity) => {
                Err(format!("{how} acts in account {}, not {}", identity.account().unwrap_or("?"), spec.id))
            }
            // With a role, the first call assumes it: its failure is AssumeRole's.
            Err(e) => {
                let operation = if spec.role_arn.is_some() { "sts:AssumeRole" } else { "sts:GetCallerIdentity" };
                Err(format!("{how} cannot be used: {}", ApiError::from_sdk(operation, e).explain()))
            }
        }
    }

    /// One account: its global work once, its regional work per region.
    async fn scan_account(&self, spec: AccountSpec, caller: String, scope: &Scope) -> Collection {
        let mut out = Collection::default();
        let account_target = aws_account_id(&spec.id);
        let target = Target::aws_account(&spec.id).with_tags(spec.tags.clone());
        out.targets.push(match &spec.name {
            Some(name) => target.named(name.clone()),
            None => target,
        });
        let sdk = match self.account_sdk(&spec, &caller).await {
            Ok(sdk) => sdk,
            Err(reason) => {
                warn!(account = %spec.id, %reason, "account not scanned");
                let gap = Gap::source(format!("aws account {}", spec.label()), GapKind::Denied, reason);
                out.gaps.push(gap.with_target(account_target));
                return out;
            }
        };
        let mut regions = if spec.regions.is_empty() { self.config.regions.clone() } else { spec.regions.clone() };
        if regions.is_empty() {
            regions.extend(self.base.region().map(|r| r.to_string()));
        }
        if regions.iter().any(|r| r == "all") {
            match SdkRegions::new(&sdk).enabled_regions().await {
                Ok(enabled) if enabled.is_empty() => {
                    let reason = "account:ListRegions answered no enabled region: only global services were read";
                    let gap = Gap::source(format!("aws account {}", spec.label()), GapKind::Unreadable, reason);
                    out.gaps.push(gap.with_target(account_target.clone()));
                    regions.clear();
                }
                Ok(enabled) => regions = enabled,
                Err(e) => {
                    let reason = format!("its enabled regions could not be listed: {}", e.explain());
                    let gap = Gap::source(format!("aws account {}", spec.label()), GapKind::Unreadable, reason);
                    out.gaps.push(gap.with_target(account_target.clone()));
                    regions.retain(|r| r != "all");
                }
            }
        }
        // Global services are read from the first region.
        // The configured region when it is one of the account's (likely enabled), else the first.
        let base_region = self.base.region().map(|r| r.to_string());
        let home =
            base_region.clone().filter(|b| regions.contains(b)).or_else(|| regions.first().cloned()).or(base_region);
        let in_region = |region: &str| sdk.to_builder().region(aws_config::Region::new(region.to_owned())).build();
        let global_sdk = home.as_deref().map_or_else(|| sdk.clone(), in_region);
        for collector in self.collectors.global(&global_sdk, &spec.id) {
            match self.run(collector.as_ref(), scope, &spec, None).await {
                Ok(c) => out.extend(c),
                Err(gap) => out.gaps.push(gap),
            }
        }
        let regional = futures::stream::iter(regions.iter().cloned())
            .map(|region| {
                let sdk = in_region(&region);
                let spec = &spec;
                async move {
                    let mut c = Collection::default();
                    c.targets.push(Target::aws_region(&spec.id, &region));
                    let mut failed = Vec::new();
                    let collectors = self.collectors.regional(&sdk, &spec.id, &region);
                    let count = collectors.len();
                    for collector in collectors {
                        match self.run(collector.as_ref(), scope, spec, Some(&region)).await {
                            Ok(one) => c.extend(one),
                            Err(gap) => failed.push(gap),
                        }
                    }
                    // A region where every collector failed (disabled, or denied as a whole) is one gap.
                    if count > 1 && failed.len() == count {
                        let reasons: Vec<String> =
                            failed.iter().map(|g| format!("{}: {}", g.collector, g.reason)).collect();
                        let mut gap = failed.swap_remove(0);
                        gap.reason = format!("nothing in this region could be read: {}", reasons.join("; "));
                        failed = vec![gap];
                    }
                    c.gaps.extend(failed);
                    c
                }
            })
            .buffer_unordered(self.config.region_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for c in regional {
            out.extend(c);
        }
        out
    }

    /// One collector of one target, within the per-target timeout; its
    /// evidence and gaps name the account (and region). `Err`: it failed as
    /// a whole, and this gap says so.
    async fn run(
        &self,
        collector: &dyn Collector,
        scope: &Scope,
        spec: &AccountSpec,
        region: Option<&str>,
    ) -> Result<Collection, Gap> {
        let target = match region {
            Some(r) => aws_region_id(&spec.id, r),
            None => aws_account_id(&spec.id),
        };
        let place = match region {
            Some(r) => format!("aws account {} {r}", spec.label()),
            None => format!("aws account {}", spec.label()),
        };
        let name = collector.name().to_owned();
        let limit = Duration::from_secs(self.config.target_timeout_secs.max(1));
        let mut collection = match tokio::time::timeout(limit, collector.collect(scope)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let kind = if e.is_permission_denied() { GapKind::Denied } else { GapKind::Failed };
                let mut gap = Gap::source(place, kind, e.to_string()).with_target(target);
                gap.collector = name;
                return Err(gap);
            }
            Err(_) => {
                let reason = format!("no answer within {} s", limit.as_secs());
                let mut gap = Gap::source(place, GapKind::TimedOut, reason).with_target(target);
                gap.collector = name;
                return Err(gap);
            }
        };
        let shared: Arc<str> = Arc::from(name.as_str());
        for e in &mut collection.evidence {
            e.collector = Arc::clone(&shared);
            let resource = Arc::make_mut(&mut e.resource);
            if resource.account.is_none() {
                resource.account = Some(spec.id.clone());
            }
            if resource.region.is_none()
                && let Some(r) = region
            {
                resource.region = Some(r.to_owned());
            }
        }
        for g in &mut collection.gaps {
            g.collector.clone_from(&name);
            if g.target.is_none() {
                g.target = Some(target.clone());
            }
            g.source = Some(match g.source.take() {
                Some(source) => format!("{place}: {source}"),
                None => place.clone(),
            });
        }
        Ok(collection)
    }
}

#[async_trait]
impl Collector for FleetCollector {
    fn name(&self) -> &str {
        "aws-fleet"
    }

    fn checks(&self) -> Vec<Check> {
        self.collectors.checks()
    }

    /// A minute beyond the fleet's own deadline, which keeps what finished.
    fn timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.config.run_timeout_secs.max(1) + 60))
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        self.collect_with_progress(scope, Progress::none()).await
    }

    async fn collect_with_progress(&self, scope: &Scope, progress: Progress) -> compliance_core::Result<Collection> {
        let identity = aws_sdk_sts::Client::new(&self.base)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("sts:GetCallerIdentity", e).into_collect_error("aws-fleet"))?;
        let caller = identity.account().unwrap_or_default().to_owned();
        let mut accounts = self.accounts(&caller).await?;
        let listed = accounts.len();
        let shard = self.config.shard.unwrap_or(Shard::ALL);
        accounts.retain(|a| shard.owns(&a.id));
        info!(accounts = accounts.len(), listed, %shard, "fleet accounts");
        progress.targets_planned(accounts.len());
        let mut pending: std::collections::BTreeMap<String, String> =
            accounts.iter().map(|a| (aws_account_id(&a.id), a.label())).collect();
        let scans = futures::stream::iter(accounts)
            .map(|spec| {
                let caller = caller.clone();
                async move {
                    let id = aws_account_id(&spec.id);
                    (id, self.scan_account(spec, caller, scope).await)
                }
            })
            .buffer_unordered(self.config.account_concurrency.max(1));
        futures::pin_mut!(scans);
        let mut all = Collection::default();
        // The fleet's own deadline, before the engine's: what finished is kept, and each account
        // still running is a gap naming it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.config.run_timeout_secs.max(1));
        loop {
            match tokio::time::timeout_at(deadline, scans.next()).await {
                Ok(Some((id, c))) => {
                    pending.remove(&id);
                    progress.target_finished(&id, c.evidence.len(), c.gaps.len());
                    all.extend(c);
                }
                Ok(None) => break,
                Err(_) => {
                    let reason = format!("not finished within the fleet's {} s", self.config.run_timeout_secs);
                    for (id, label) in std::mem::take(&mut pending) {
                        let gap = Gap::source(format!("aws account {label}"), GapKind::TimedOut, reason.clone());
                        all.gaps.push(gap.with_target(id));
                    }
                    break;
                }
            }
        }
        Ok(all)
    }
}
