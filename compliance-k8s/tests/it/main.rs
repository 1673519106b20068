//! Integration tests of compliance-k8s, in one binary (link time).

mod admission;
mod article_rules;
#[cfg(feature = "cluster")]
mod cluster;
mod corpus;
mod pss;
#[cfg(feature = "cluster")]
mod publish;
#[cfg(feature = "rego")]
mod rego;
#[cfg(feature = "cluster")]
mod remediation;
#[cfg(all(feature = "webhook", feature = "rego"))]
mod webhook;

use compliance_core::{Evidence, Scope};
use compliance_k8s::{CheckConfig, scan_text};

/// Result of a test that uses `?`.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Judges one YAML text with one check and returns the evidence.
pub fn judge(yaml: &str, check: &str) -> Vec<Evidence> {
    judge_with(yaml, check, &CheckConfig::default())
}

/// Same, with check settings.
pub fn judge_with(yaml: &str, check: &str, config: &CheckConfig) -> Vec<Evidence> {
    let c = scan_text(yaml, "test.yaml", config, &Scope::only([check]));
    assert!(c.gaps.is_empty(), "unexpected gaps: {:?}", c.gaps);
    c.evidence
}

/// A Pod manifest with the given spec body (indented YAML under `spec:`).
pub fn pod(spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{spec}")
}
