//! Fleets: every account of an AWS Organization (or of an accounts file)
//! and every region asked for, in one collection.
//!
//! - `accounts`: the accounts file ([`AccountSpec`]); `org`: the
//!   organization's accounts ([`OrgApi`]); `regions`: an account's enabled
//!   regions ([`RegionsApi`]); `collector`: [`FleetCollector`], which assumes
//!   a role in each account (credentials renewed before they expire), runs
//!   the global collectors once per account and the regional ones per
//!   region, with bounded concurrency at both levels, and turns a target
//!   that fails into a gap naming it.
//!
//! Which collectors run per account and region is an [`AccountCollectors`]:
//! the AWS provider's are the same as for a single account.
//!
//! ```no_run
//! use std::sync::Arc;
//! use compliance_aws::fleet::{Accounts, FleetCollector, FleetConfig};
//! # async fn demo(collectors: Arc<dyn compliance_aws::fleet::AccountCollectors>) {
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let config = FleetConfig::new(Accounts::Organization {
//!     units: Vec::new(),
//!     role_name: "ComplianceAudit".into(),
//!     external_id: None,
//! })
//! .with_regions(["eu-west-1", "us-east-1"]);
//! let fleet = FleetCollector::new(&sdk, config, collectors);
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use compliance_core::target::Shard;
use compliance_core::{Check, Collector};

mod accounts;
mod collector;
mod org;
mod regions;

pub use accounts::{AccountSpec, MAX_ACCOUNTS, MAX_ACCOUNTS_FILE_BYTES, parse_accounts, read_accounts_file};
pub use collector::{FleetCollector, SESSION_NAME};
pub use org::{OrgAccount, OrgApi, SdkOrg, accounts_under};
pub use regions::{RegionsApi, SdkRegions};

/// Which accounts a fleet reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accounts {
    /// Only the account of the credentials in use (its regions are the fleet).
    Caller,
    /// The accounts an accounts file lists.
    File(PathBuf),
    /// The ACTIVE accounts of the organization (or of these units and the
    /// units below them), each through this role; the calling account with
    /// its own credentials.
    Organization {
        /// Organizational units (`ou-...`, or a root `r-...`); all accounts when empty.
        units: Vec<String>,
        /// The role to assume in each account.
        role_name: String,
        /// The external id its trust policy asks for.
        external_id: Option<String>,
    },
}

/// How a fleet runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetConfig {
    /// The accounts.
    pub accounts: Accounts,
    /// Regions of every account without its own list (`all`: every region
    /// enabled for it); the base configuration's region when empty.
    pub regions: Vec<String>,
    /// Accounts scanned at once.
    pub account_concurrency: usize,
    /// Regions of one account scanned at once.
    pub region_concurrency: usize,
    /// Only this shard of the accounts.
    pub shard: Option<Shard>,
    /// Seconds one collector of one target may take.
    pub target_timeout_secs: u64,
    /// Seconds the whole fleet may take.
    pub run_timeout_secs: u64,
}

impl FleetConfig {
    /// These accounts, with the default limits: 8 accounts and 4 regions at
    /// once, 10 minutes per collector and target, 6 hours in all.
    pub fn new(accounts: Accounts) -> Self {
        Self {
            accounts,
            regions: Vec::new(),
            account_concurrency: 8,
            region_concurrency: 4,
            shard: None,
            target_timeout_secs: 600,
            run_timeout_secs: 6 * 3600,
        }
    }

    /// With these regions.
    pub fn with_regions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, regions: I) -> Self {
        self.regions = regions.into_iter().map(Into::into).collect();
        self
    }

    /// With these concurrency limits (at least 1 each).
    pub fn with_concurrency(mut self, accounts: usize, regions: usize) -> Self {
        self.account_concurrency = accounts.max(1);
        self.region_concurrency = regions.max(1);
        self
    }

    /// Only this shard of the accounts.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }
}

/// The collectors a fleet runs in each account and region.
pub trait AccountCollectors: Send + Sync {
    /// Every check they can produce.
    fn checks(&self) -> Vec<Check>;
    /// Collectors of global services (IAM, S3, CloudTrail), run once per
    /// account with `sdk` acting in `account`.
    fn global(&self, sdk: &aws_config::SdkConfig, account: &str) -> Vec<Arc<dyn Collector>>;
    /// Collectors of regional services (AWS Config), run per region with
    /// `sdk` set to that region.
    fn regional(&self, sdk: &aws_config::SdkConfig, account: &str, region: &str) -> Vec<Arc<dyn Collector>>;
}
