//! Writes report objects (PolicyReports, OpenReports) into a cluster with
//! server-side apply, and removes the ones an earlier run wrote that the
//! latest run no longer has (a namespace with no workload left).

use std::collections::HashSet;

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use serde_json::Value;
use tracing::{debug, info, warn};

/// The field manager of every apply, and the value of the
/// `app.kubernetes.io/managed-by` label that marks the objects this tool owns.
pub const MANAGER: &str = "compliance-rs";

/// Objects listed per page when looking for stale reports.
const PAGE: u32 = 500;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// An object without `apiVersion`, `kind` or `metadata.name`.
    #[error("object {index}: {message}")]
    Object {
        /// Its position in the list given.
        index: usize,
        /// What is missing.
        message: String,
    },
    /// The API server refused a call.
    #[error("{what}: {source}")]
    Api {
        /// The call (`apply PolicyReport shop/compliance-rs`).
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// What one publication did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Published {
    /// Objects applied.
    pub applied: usize,
    /// Stale objects deleted.
    pub deleted: usize,
}

/// Publishes report objects of one API (a namespaced and a cluster-scoped
/// kind, such as PolicyReport and ClusterPolicyReport) into a cluster.
///
/// ```no_run
/// # async fn demo(objects: Vec<serde_json::Value>) -> Result<(), Box<dyn std::error::Error>> {
/// use compliance_k8s::ReportPublisher;
/// let client = kube::Client::try_default().await?;
/// let publisher = ReportPublisher::new(client, "wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport");
/// let done = publisher.publish(&objects, true).await?;
/// println!("{} applied, {} stale removed", done.applied, done.deleted);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReportPublisher {
    client: Client,
    namespaced: ApiResource,
    cluster: ApiResource,
}

impl std::fmt::Debug for ReportPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportPublisher")
            .field("namespaced", &self.namespaced.kind)
            .field("cluster", &self.cluster.kind)
            .finish_non_exhaustive()
    }
}

impl ReportPublisher {
    /// A publisher of `namespaced_kind` and `cluster_kind` objects of
    /// `api_version` (`group/version`).
    pub fn new(client: Client, api_version: &str, namespaced_kind: &str, cluster_kind: &str) -> Self {
        Self {
            client,
            namespaced: resource(api_version, namespaced_kind),
            cluster: resource(api_version, cluster_kind),
        }
    }

    /// Applies every object (server-side apply, forced: this tool owns its
    /// reports). With `prune`, then deletes the objects of the two kinds that
    /// carry `app.kubernetes.io/managed-by: compliance-rs` and are not in
    /// `objects`: pass `false` when the run behind them was incomplete, so
    /// that a namespace that could not be read keeps its last report.
    ///
    /// An object that is refused (a namespace being deleted) does not stop
    /// the others; the first refusal is returned, with the count, once all
    /// were tried, and nothing is deleted then.
    pub async fn publish(&self, objects: &[Value], prune: bool) -> Result<Published, PublishError> {
        let params = PatchParams::apply(MANAGER).force();
        let mut kept: HashSet<(String, String, String)> = HashSet::new();
        let mut refused: Vec<PublishError> = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            let field = |path: &[&str]| path.iter().fold(object, |v, k| &v[*k]).as_str().map(str::to_owned);
            let (Some(kind), Some(name)) = (field(&["kind"]), field(&["metadata", "name"])) else {
                refused.push(PublishError::Object { index, message: "no kind or metadata.name".into() });
                continue;
            };
            let namespace = field(&["metadata", "namespace"]);
            let api = match (&namespace, kind.as_str()) {
                (Some(ns), k) if k == self.namespaced.kind => {
                    Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &self.namespaced)
                }
                (None, k) if k == self.cluster.kind => {
                    Api::<DynamicObject>::all_with(self.client.clone(), &self.cluster)
                }
                _ => {
                    refused.push(PublishError::Object {
                        index,
                        message: format!(
                            "{kind} (namespace {namespace:?}) is neither a namespaced {} nor a {}",
                            self.namespaced.kind, self.cluster.kind
                        ),
                    });
                    continue;
                }
            };
            match api.patch(&name, &params, &Patch::Apply(object)).await {
                Ok(_) => {
                    kept.insert((kind, namespace.unwrap_or_default(), name));
                }
                Err(source) => refused.push(PublishError::Api {
                    what: format!(
                        "apply {kind} {}{name}",
                        namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default()
                    ),
                    source,
                }),
            }
        }
        let applied = kept.len();
        if let Some(first) = refused.into_iter().next() {
            // Nothing is deleted after a refusal: the picture is incomplete.
            warn!(applied, "some reports were refused: {first}");
            return Err(first);
        }
        if !prune {
            info!(applied, "reports published to the cluster (stale ones kept: the run was incomplete)");
            return Ok(Published { applied, deleted: 0 });
        }
        let mut deleted = 0;
        for (resource, namespaced) in [(&self.namespaced, true), (&self.cluster, false)] {
            for (namespace, name) in self.managed(resource).await? {
                if kept.contains(&(resource.kind.clone(), namespace.clone(), name.clone())) {
                    continue;
                }
                let api = if namespaced {
                    Api::<DynamicObject>::namespaced_with(self.client.clone(), &namespace, resource)
                } else {
                    Api::<DynamicObject>::all_with(self.client.clone(), resource)
                };
                debug!(kind = %resource.kind, %namespace, %name, "deleting a stale report");
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => deleted += 1,
                    // Someone else removed it first: the goal is reached.
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(source) => {
                        return Err(PublishError::Api {
                            what: format!("delete {} {namespace}/{name}", resource.kind),
                            source,
                        });
                    }
                }
            }
        }
        info!(applied, deleted, "reports published to the cluster");
        Ok(Published { applied, deleted })
    }

    /// (namespace, name) of every object of `resource` this tool manages, every page.
    async fn managed(&self, resource: &ApiResource) -> Result<Vec<(String, String)>, PublishError> {
        let api = Api::<DynamicObject>::all_with(self.client.clone(), resource);
        let selector = format!("app.kubernetes.io/managed-by={MANAGER}");
        let mut params = ListParams::default().labels(&selector).limit(PAGE);
        let mut found = Vec::new();
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|source| PublishError::Api { what: format!("list {}", resource.plural), source })?;
            found.extend(page.items.into_iter().filter_map(|o| {
                let name = o.metadata.name?;
                Some((o.metadata.namespace.unwrap_or_default(), name))
            }));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(found),
            }
        }
    }
}

/// The API resource of `kind` in `api_version`; report kinds' plurals are
/// their lower-cased kind plus `s` (`policyreports`, `clusterreports`).
fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = format!("{}s", kind.to_lowercase());
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}
