#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admission;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod judge;
mod manifests;
mod provider;
#[cfg(feature = "cluster")]
mod publish;
#[cfg(feature = "rego")]
mod rego;
mod remediate;
mod rules;
#[cfg(any(feature = "rego", feature = "webhook"))]
mod serde_millis;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;
mod workload;

pub use admission::{AdmissionConfig, AdmissionError, FailurePolicy, review, review_with_evidence};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use cluster::{ClusterCollector, ClusterConfig};
pub use config::{CheckConfig, DEFAULT_REQUIRED_LABELS};
pub use judge::{BuiltinRules, Judged, KubeObject, ObjectJudge, admission_input, judge_object};
pub use manifests::{ManifestCollector, scan_paths, scan_text};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use provider::kube_client;
pub use provider::{K8sConfig, K8sProvider};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use publish::{MANAGER, PublishError, Published, ReportPublisher};
#[cfg(feature = "rego")]
#[cfg_attr(docsrs, doc(cfg(feature = "rego")))]
pub use rego::{MAX_REGO_NESTING, RegoConfig, RegoError, RegoPolicies, RegoPolicy, RegoSyntax};
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub use remediate::WorkloadRemediator;
pub use remediate::{FixDefaults, ManifestFix, fix_manifest, plan_patch};
pub use rules::{Rule, catalogue, checks, evaluate, rule, rules, unreadable};
pub use workload::{ContainerGroup, ContainerRef, Workload, WorkloadError, WorkloadKind};
