#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "iam", feature = "s3", feature = "config"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "iam", feature = "s3", feature = "config"))))]
mod account;
pub mod api;
#[cfg(feature = "cloudtrail")]
#[cfg_attr(docsrs, doc(cfg(feature = "cloudtrail")))]
pub mod cloudtrail;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config_recorder;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config_rules;
#[cfg(any(feature = "iam", feature = "s3", feature = "config"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "iam", feature = "s3", feature = "config"))))]
pub mod endpoint;
#[cfg(feature = "fleet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fleet")))]
pub mod fleet;
#[cfg(feature = "iam")]
#[cfg_attr(docsrs, doc(cfg(feature = "iam")))]
pub mod iam;
#[cfg(any(feature = "s3", feature = "terraform"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "s3", feature = "terraform"))))]
pub mod s3;
#[cfg(feature = "terraform")]
#[cfg_attr(docsrs, doc(cfg(feature = "terraform")))]
pub mod terraform;

mod provider;

#[cfg(any(feature = "iam", feature = "s3", feature = "config"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "iam", feature = "s3", feature = "config"))))]
pub use account::AccountGuard;
pub use api::ApiError;
#[cfg(feature = "fleet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fleet")))]
pub use provider::account_collectors;
#[cfg(any(feature = "iam", feature = "s3", feature = "config"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "iam", feature = "s3", feature = "config"))))]
pub use provider::sdk_config;
pub use provider::{AwsConfig, AwsProvider, CONFIG_PREFIX};

/// The metadata of every built-in AWS check of the enabled features (AWS
/// Config rules are discovered per account: see [`config_rules`]).
pub fn checks() -> Vec<compliance_core::Check> {
    #[allow(unused_mut)]
    let mut checks = Vec::new();
    #[cfg(feature = "iam")]
    checks.extend(iam::checks());
    #[cfg(feature = "iam")]
    checks.extend(iam::posture::principal_catalogue().checks());
    #[cfg(feature = "iam")]
    checks.extend(iam::posture::password_catalogue().checks());
    #[cfg(feature = "config")]
    checks.extend(config_recorder::catalogue().checks());
    #[cfg(feature = "cloudtrail")]
    checks.extend(cloudtrail::account_catalogue().checks());
    #[cfg(feature = "cloudtrail")]
    checks.extend(cloudtrail::trail_catalogue().checks());
    #[cfg(any(feature = "s3", feature = "terraform"))]
    checks.extend(s3::checks());
    #[cfg(feature = "s3")]
    checks.extend(s3::account::account_catalogue().checks());
    checks
}
