//! Settings of the Kubernetes checks.

use serde::{Deserialize, Serialize};

/// Labels demanded of Deployments, StatefulSets and DaemonSets by default:
/// what data a workload holds, how long it is kept, and whether it is in scope.
pub const DEFAULT_REQUIRED_LABELS: [&str; 3] = ["data-classification", "data-retention", "compliance-scope"];

/// [`CheckConfig::max_objects_per_file`] by default.
pub const DEFAULT_MAX_OBJECTS_PER_FILE: usize = 100_000;

/// Settings of the checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CheckConfig {
    /// Labels `k8s.workload.required_labels` demands.
    pub required_labels: Vec<String>,
    /// Objects judged in one manifest file; beyond, the rest of the file is
    /// one gap that says how many were left out. Evidence is held in memory
    /// (about 28 KiB per workload), so this bounds a scan's memory.
    pub max_objects_per_file: usize,
    /// Rego policies judged next to the built-in checks (feature `rego`).
    #[cfg(feature = "rego")]
    #[serde(skip)]
    pub policies: std::sync::Arc<crate::rego::RegoPolicies>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            required_labels: DEFAULT_REQUIRED_LABELS.iter().map(|s| (*s).to_owned()).collect(),
            max_objects_per_file: DEFAULT_MAX_OBJECTS_PER_FILE,
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

    /// Sets how many objects of one file are judged (at least one).
    pub fn with_max_objects_per_file(mut self, objects: usize) -> Self {
        self.max_objects_per_file = objects.max(1);
        self
    }

    /// Sets the Rego policies judged next to the built-in checks.
    #[cfg(feature = "rego")]
    pub fn with_policies(mut self, policies: crate::rego::RegoPolicies) -> Self {
        self.policies = std::sync::Arc::new(policies);
        self
    }
}
