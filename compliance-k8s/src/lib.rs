//! # compliance-k8s
//!
//! Kubernetes workload checks for compliance-rs: four rules from the blog
//! post the project grew from, judged on effective values, the Pod Security Standards (baseline and
//! restricted), resource limits, image pinning and read-only root
//! filesystems. One set of pure check functions judges manifests, live
//! clusters and admission requests alike.
//!
//! - [`ManifestCollector`] / [`scan_text`]: files and folders, multi-document
//!   YAML read the way Kubernetes reads it (`0400` is octal), JSON, `List`s.
//! - `ClusterCollector` (feature `cluster`): every workload kind, all or some
//!   namespaces, paginated; a denied namespace is a gap, not a failed run.
//! - [`review`]: answers an `AdmissionReview`.
//! - `WorkloadRemediator` (feature `cluster`) and [`fix_manifest`]: minimal
//!   patches, server-side dry run by default, re-verified after applying.
//! - [`K8sProvider`]: all of the above built from one serde configuration
//!   ([`K8sConfig`]), for a `compliance_core::Registry`.
//!
//! Every source goes through one judge path ([`judge_object`]): the
//! built-in rules ([`catalogue`]) and Rego policies are both an
//! [`ObjectJudge`].
//!
//! ```
//! use compliance_core::{Scope, Status};
//! use compliance_k8s::{CheckConfig, scan_text};
//! let manifest = r#"
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: api, namespace: shop}
//! spec:
//!   template:
//!     spec:
//!       securityContext: {runAsNonRoot: true}
//!       containers:
//!         - name: api
//!           image: registry.example.com/api:1.4.2
//!           securityContext: {runAsNonRoot: false}
//! "#;
//! let collection = scan_text(manifest, "api.yaml", &CheckConfig::default(), &Scope::only(["k8s.pod.run_as_non_root"]));
//! // The container's own setting overrides the pod's.
//! assert_eq!(collection.evidence[0].status, Status::Fail);
//! ```
//!
//! ## Feature flags
//! - `cluster` (default): live clusters through kube-rs (`ClusterCollector`,
//!   `WorkloadRemediator`). Without it, no HTTP client is compiled: manifests
//!   and admission requests only.

mod admission;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod judge;
mod manifests;
mod provider;
#[cfg(feature = "rego")]
mod rego;
mod remediate;
mod rules;
#[cfg(any(feature = "rego", feature = "webhook"))]
mod serde_millis;
#[cfg(feature = "webhook")]
pub mod webhook;
mod workload;

pub use admission::{AdmissionConfig, AdmissionError, FailurePolicy, review, review_with_evidence};
#[cfg(feature = "cluster")]
pub use cluster::{ClusterCollector, ClusterConfig};
pub use config::{CheckConfig, DEFAULT_REQUIRED_LABELS};
pub use judge::{BuiltinRules, Judged, KubeObject, ObjectJudge, admission_input, judge_object};
pub use manifests::{ManifestCollector, scan_paths, scan_text};
#[cfg(feature = "cluster")]
pub use provider::kube_client;
pub use provider::{K8sConfig, K8sProvider};
#[cfg(feature = "rego")]
pub use rego::{RegoConfig, RegoError, RegoPolicies, RegoPolicy, RegoSyntax};
#[cfg(feature = "cluster")]
pub use remediate::WorkloadRemediator;
pub use remediate::{FixDefaults, ManifestFix, fix_manifest, plan_patch};
pub use rules::{Rule, catalogue, checks, evaluate, rule, rules, unreadable};
pub use workload::{ContainerGroup, ContainerRef, Workload, WorkloadError, WorkloadKind};
