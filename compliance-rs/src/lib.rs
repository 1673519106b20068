#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use compliance_core::*;

/// The AWS provider ([`compliance_aws`]).
#[cfg(feature = "attest")]
#[cfg_attr(docsrs, doc(cfg(feature = "attest")))]
pub use compliance_attest as attest;

#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub use compliance_aws as aws;
/// The Kubernetes provider ([`compliance_k8s`]).
#[cfg(feature = "k8s")]
#[cfg_attr(docsrs, doc(cfg(feature = "k8s")))]
pub use compliance_k8s as k8s;
/// Continuous monitoring ([`compliance_monitor`]).
#[cfg(feature = "monitor")]
#[cfg_attr(docsrs, doc(cfg(feature = "monitor")))]
pub use compliance_monitor as monitor;
/// Reports, scores and framework mappings ([`compliance_report`]).
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use compliance_report as report;
/// The evidence store on SQLite and PostgreSQL ([`compliance_store`]).
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use compliance_store as sql;

/// Every provider compiled into this build (by feature), registered.
///
/// ```
/// let registry = compliance_rs::registry();
/// # #[cfg(feature = "k8s")]
/// assert!(registry.get("k8s").is_some());
/// ```
pub fn registry() -> Registry {
    #[allow(unused_mut)]
    let mut registry = Registry::new();
    #[cfg(feature = "k8s")]
    registry.register(std::sync::Arc::new(compliance_k8s::K8sProvider));
    #[cfg(feature = "aws")]
    registry.register(std::sync::Arc::new(compliance_aws::AwsProvider));
    registry
}
