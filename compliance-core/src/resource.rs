//! Which resource a piece of evidence is about.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A reference to one resource on one platform.
///
/// `id` is unique within the provider: an ARN for AWS,
/// `cluster/namespace/kind/name` for a live Kubernetes object,
/// `file#document/namespace/kind/name` for a manifest.
///
/// ```
/// use compliance_core::ResourceRef;
/// let r = ResourceRef::new("k8s", "Deployment", "prod/payments/Deployment/api", "api")
///     .with_namespace("payments");
/// assert_eq!(r.namespace.as_deref(), Some("payments"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceRef {
    /// `k8s`, `aws`, ...
    pub provider: String,
    /// The resource kind (`Deployment`, `IAMUser`, `S3Bucket`, ...).
    pub kind: String,
    /// Unique id within the provider.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kubernetes cluster (context name or server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Manifest path, as the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file` where the object starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// AWS account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Labels or tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl ResourceRef {
    /// A reference with the required fields; add location with the `with_*` methods.
    pub fn new(
        provider: impl Into<String>,
        kind: impl Into<String>,
        id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            kind: kind.into(),
            id: id.into(),
            name: name.into(),
            namespace: None,
            cluster: None,
            file: None,
            line: None,
            account: None,
            region: None,
            labels: BTreeMap::new(),
        }
    }

    /// Sets the Kubernetes namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the Kubernetes cluster.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Sets the manifest file and the line the object starts on.
    pub fn with_file(mut self, file: impl Into<String>, line: Option<usize>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self
    }

    /// Sets the AWS account and region.
    pub fn with_account_region(mut self, account: Option<String>, region: Option<String>) -> Self {
        self.account = account;
        self.region = region;
        self
    }

    /// Sets the labels or tags.
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }
}
