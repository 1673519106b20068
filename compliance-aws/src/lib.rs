//! # compliance-aws
//!
//! AWS evidence for compliance-rs, through the official AWS SDK for Rust
//! and an `aws_config::SdkConfig` you provide, so your service keeps control
//! of credentials, endpoint, region and retries (`RetryConfig`).
//!
//! - [`iam`]: access reviews from the IAM credential report: one report for
//!   every user (a constant number of API calls), compliant users included.
//!   Checks `aws.iam.user_inactive`, `aws.iam.console_mfa`,
//!   `aws.iam.access_key_rotated`, `aws.iam.access_key_unused`,
//!   `aws.iam.root_access_keys`, `aws.iam.root_mfa`; the remediator disables
//!   an inactive user, with approval.
//! - [`config_rules`]: AWS Config rule compliance, one check per rule
//!   (`aws.config.<rule-name>`), every page of results.
//! - [`s3`]: bucket posture in each bucket's region (`aws.s3.public_access_block`,
//!   `aws.s3.default_encryption`, `aws.s3.versioning`, `aws.s3.ssl_only`,
//!   `aws.s3.access_logging`, `aws.s3.mfa_delete`) and the S3 remediator.
//! - `terraform`: the same S3 checks on Terraform source and plans: one
//!   catalogue judges a [`s3::BucketState`] read live or declared in code.
//! - [`AwsProvider`]: all of the above built from one serde configuration
//!   ([`AwsConfig`]), for a `compliance_core::Registry`.
//!
//! Decisions are pure functions over typed data (`judge_*`), and every call
//! goes through a small facade trait (`IamApi`, `ConfigApi`, `BucketApi`), so
//! the logic is tested on its own and the SDK code against a real API
//! (moto server).
//!
//! ```no_run
//! use std::sync::Arc;
//! use compliance_aws::{iam::{IamCollector, IamConfig}, s3::{S3Collector, S3Config}};
//! use compliance_core::{Engine, Scope};
//!
//! # async fn demo() {
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let engine = Engine::new()
//!     .with_collector(Arc::new(IamCollector::new(&sdk, IamConfig::default())))
//!     .with_collector(Arc::new(S3Collector::new(&sdk, S3Config::default())));
//! let run = engine.run(&Scope::all()).await;
//! println!("{} evidence, {} gaps", run.evidence.len(), run.gaps.len());
//! # }
//! ```
//!
//! ## Feature flags
//! - `iam` (default): IAM access reviews and the IAM remediator.
//! - `config` (default): AWS Config rule compliance.
//! - `s3` (default): S3 bucket posture and the S3 remediator.
//! - `terraform`: the S3 checks on Terraform source (`.tf`) and plans
//!   (`terraform show -json`), without the AWS SDK ([`terraform`]).

pub mod api;
#[cfg(feature = "config")]
pub mod config_rules;
#[cfg(feature = "iam")]
pub mod iam;
#[cfg(any(feature = "s3", feature = "terraform"))]
pub mod s3;
#[cfg(feature = "terraform")]
pub mod terraform;

mod provider;

pub use api::ApiError;
#[cfg(any(feature = "iam", feature = "s3", feature = "config"))]
pub use provider::sdk_config;
pub use provider::{AwsConfig, AwsProvider, CONFIG_PREFIX};

/// The metadata of every built-in AWS check of the enabled features (AWS
/// Config rules are discovered per account: see [`config_rules`]).
pub fn checks() -> Vec<compliance_core::Check> {
    #[allow(unused_mut)]
    let mut checks = Vec::new();
    #[cfg(feature = "iam")]
    checks.extend(iam::checks());
    #[cfg(any(feature = "s3", feature = "terraform"))]
    checks.extend(s3::checks());
    checks
}
