//! Settings of the Kubernetes checks.

use serde::{Deserialize, Serialize};

/// Labels demanded of Deployments, StatefulSets and DaemonSets by default:
/// what data a workload holds, how long it is kept, and whether it is in scope.
pub const DEFAULT_REQUIRED_LABELS: [&str; 3] = ["data-classification", "data-retention", "compliance-scope"];

/// Settings of the checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CheckConfig {
    /// Labels `k8s.workload.required_labels` demands.
    pub required_labels: Vec<String>,
    /// Rego policies judged next to the built-in checks (feature `rego`).
    #[cfg(feature = "rego")]
    #[serde(skip)]
    pub policies: std::sync::Arc<crate::rego::RegoPolicies>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            required_labels: DEFAULT_REQUIRED_LABELS.iter().map(|s| (*s).to_owned()).collect(),
            #[cfg(feature = "rego")]
            policies: std::sync::Arc::default(),
        }
    }
}

impl CheckConfig {
    /// Sets the required labels.
    pub fn with_required_labels<I: IntoIterator<Item = S>, S: Into<String>>(mut self, labels: I) -> Self {
        self.required_labels = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the Rego policies judged next to the built-in checks.
    #[cfg(feature = "rego")]
    pub fn with_policies(mut self, policies: crate::rego::RegoPolicies) -> Self {
        self.policies = std::sync::Arc::new(policies);
        self
    }
}
