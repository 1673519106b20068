//! Live clusters through kube-rs: every workload kind, paginated.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use compliance_core::{Check, Collection, Collector, Gap, GapKind, ResourceRef, Scope};
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::config::CheckConfig;
use crate::judge::{KubeObject, judge_object};
use crate::rules::unreadable;
use crate::workload::WorkloadKind;

/// Settings of a cluster scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The cluster's name in resource ids (`cluster/namespace/kind/name`).
    pub cluster: String,
    /// Namespaces to scan; empty means all.
    pub namespaces: Vec<String>,
    /// Objects per list page (`limit`).
    pub page_size: u32,
    /// Also judge objects a listed controller owns (the Pods of a
    /// ReplicaSet, the ReplicaSets of a Deployment, the Jobs of a CronJob).
    /// Off by default: their template is judged once, at the owner.
    pub include_owned: bool,
    /// Attempts per list call on throttling, server errors or broken
    /// connections, with doubling backoff.
    pub attempts: u32,
    /// Check settings.
    pub checks: CheckConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            cluster: "cluster".into(),
            namespaces: Vec::new(),
            page_size: 500,
            include_owned: false,
            attempts: 3,
            checks: CheckConfig::default(),
        }
    }
}

impl ClusterConfig {
    /// Sets the cluster name.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = cluster.into();
        self
    }

    /// Limits the scan to these namespaces.
    pub fn with_namespaces<I: IntoIterator<Item = S>, S: Into<String>>(mut self, namespaces: I) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the page size.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Judges owned objects too.
    pub fn with_owned(mut self, include_owned: bool) -> Self {
        self.include_owned = include_owned;
        self
    }
}

/// Judges the workloads of a live cluster.
///
/// ```no_run
/// use compliance_core::{Collector, Scope};
/// use compliance_k8s::{ClusterCollector, ClusterConfig};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let collector = ClusterCollector::new(client, ClusterConfig::default().with_cluster("prod"));
/// let collection = collector.collect(&Scope::all()).await?;
/// for gap in &collection.gaps { eprintln!("not judged: {:?}: {}", gap.source, gap.reason); }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterCollector {
    client: kube::Client,
    config: ClusterConfig,
}

impl ClusterCollector {
    /// A collector using `client` (its credentials, endpoint and timeouts).
    pub fn new(client: kube::Client, config: ClusterConfig) -> Self {
        Self { client, config }
    }

    /// Lists and judges one kind. `Err` when the API server cannot be reached
    /// at all (no HTTP answer): listing the other kinds would only wait again.
    async fn list_kind<K>(
        &self,
        kind: WorkloadKind,
        namespace: Option<&str>,
        scope: &Scope,
        out: &mut Collection,
    ) -> Result<(), String>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + Debug,
    {
        let api: Api<K> = match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let source = format!("{}/{}/{}", self.config.cluster, namespace.unwrap_or("*"), K::plural(&()));
        let mut params = ListParams::default().limit(self.config.page_size);
        let mut pages = 0_usize;
        let mut restarts = 0;
        let mut items: Vec<K> = Vec::new();
        loop {
            match self.list_page(&api, &params).await {
                Ok(list) => {
                    pages += 1;
                    items.extend(list.items);
                    match list.metadata.continue_.filter(|t| !t.is_empty()) {
                        Some(token) => params = params.continue_token(&token),
                        None => break,
                    }
                }
                // 410 Gone: the continue token expired; list again from the start.
                Err(kube::Error::Api(status)) if status.code == 410 && restarts < 2 => {
                    restarts += 1;
                    warn!(%source, "continue token expired; listing again");
                    items.clear();
                    params = ListParams::default().limit(self.config.page_size);
                }
                Err(e) if !matches!(e, kube::Error::Api(_)) && items.is_empty() && pages == 0 => {
                    warn!(%source, error = %e, "API server unreachable");
                    return Err(format!("list {} failed: {e}", K::plural(&())));
                }
                Err(e) => {
                    let kind_of_gap = match &e {
                        kube::Error::Api(s) if s.code == 401 || s.code == 403 => GapKind::Denied,
                        _ => GapKind::Unreadable,
                    };
                    warn!(%source, error = %e, "list failed");
                    let listed =
                        if items.is_empty() { String::new() } else { format!(" after {} objects", items.len()) };
                    out.gaps.push(Gap::source(
                        source.clone(),
                        kind_of_gap,
                        format!("list {} failed{listed}: {e}", K::plural(&())),
                    ));
                    break;
                }
            }
        }
        debug!(%source, pages, objects = items.len(), "listed");
        for item in items {
            self.judge(kind, item, scope, out);
        }
        Ok(())
    }

    async fn list_page<K>(&self, api: &Api<K>, params: &ListParams) -> Result<kube::core::ObjectList<K>, kube::Error>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
    {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match api.list(params).await {
                Err(e) if attempt < self.config.attempts.max(1) && transient(&e) => {
                    debug!(error = %e, attempt, "transient list error; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn judge<K: Resource<DynamicType = ()> + Serialize>(
        &self,
        kind: WorkloadKind,
        item: K,
        scope: &Scope,
        out: &mut Collection,
    ) {
        if !self.config.include_owned && owned_by_listed_controller(&item) {
            return;
        }
        let namespace = item.namespace().unwrap_or_default();
        let name = item.name_any();
        let id = format!("{}/{}/{}/{}", self.config.cluster, namespace, kind.as_str(), name);
        let resource = ResourceRef::new("k8s", kind.as_str(), id, name.clone())
            .with_cluster(self.config.cluster.clone())
            .with_namespace(namespace);
        let mut object = match serde_json::to_value(&item) {
            Ok(object) => object,
            Err(e) => {
                out.evidence.extend(unreadable(kind, resource, &e.to_string(), scope));
                return;
            }
        };
        // Objects from a list carry no apiVersion/kind: put them back, as a manifest has them.
        object["apiVersion"] = serde_json::json!(K::api_version(&()));
        object["kind"] = serde_json::json!(K::kind(&()));
        let object = KubeObject::new(&object, resource);
        let judged = judge_object(&object, &self.config.checks, scope);
        out.evidence.extend(judged.evidence);
        if let Some((kind, reason)) = judged.unreadable {
            out.evidence.extend(unreadable(kind, std::sync::Arc::clone(object.resource()), &reason, scope));
        }
    }
}

impl ClusterCollector {
    /// Watches every workload kind (kube-runtime watchers, with backoff) and
    /// judges each object that is created or changed, within moments of the
    /// change: one [`Collection`] per change. The initial listing is not
    /// judged again (the scan does that); a watch that fails is a gap, and
    /// the watcher retries.
    pub fn watch(&self, scope: Scope) -> futures::stream::BoxStream<'static, Collection> {
        let streams = vec![
            self.watch_kind::<Pod>(WorkloadKind::Pod, scope.clone()),
            self.watch_kind::<Deployment>(WorkloadKind::Deployment, scope.clone()),
            self.watch_kind::<StatefulSet>(WorkloadKind::StatefulSet, scope.clone()),
            self.watch_kind::<DaemonSet>(WorkloadKind::DaemonSet, scope.clone()),
            self.watch_kind::<ReplicaSet>(WorkloadKind::ReplicaSet, scope.clone()),
            self.watch_kind::<ReplicationController>(WorkloadKind::ReplicationController, scope.clone()),
            self.watch_kind::<Job>(WorkloadKind::Job, scope.clone()),
            self.watch_kind::<CronJob>(WorkloadKind::CronJob, scope),
        ];
        futures::stream::select_all(streams).boxed()
    }

    fn watch_kind<K>(&self, kind: WorkloadKind, scope: Scope) -> futures::stream::BoxStream<'static, Collection>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug
            + Send
            + 'static,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let this = self.clone();
        let source = format!("{}/*/{}", self.config.cluster, K::plural(&()));
        watcher(api, watcher::Config::default())
            .default_backoff()
            .filter_map(move |event| {
                let mut out = Collection::default();
                match event {
                    Ok(watcher::Event::Apply(item)) => {
                        let wanted = this.config.namespaces.is_empty()
                            || item.namespace().is_some_and(|ns| this.config.namespaces.contains(&ns));
                        if wanted {
                            debug!(kind = kind.as_str(), name = %item.name_any(), "changed; judging");
                            this.judge(kind, item, &scope, &mut out);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(%source, "watch failed: {e}");
                        out.gaps.push(Gap::source(source.clone(), GapKind::Unreadable, format!("watch failed: {e}")));
                    }
                }
                let changed = !out.evidence.is_empty() || !out.gaps.is_empty();
                futures::future::ready(changed.then_some(out))
            })
            .boxed()
    }
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

fn owned_by_listed_controller<K: Resource>(item: &K) -> bool {
    item.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && WorkloadKind::from_type(&o.api_version, &o.kind).is_some())
}

impl compliance_core::provider::Watcher for ClusterCollector {
    fn name(&self) -> &str {
        "k8s-cluster"
    }

    fn watch(&self, scope: Scope) -> futures::stream::BoxStream<'static, Collection> {
        ClusterCollector::watch(self, scope)
    }
}

#[async_trait]
impl Collector for ClusterCollector {
    fn name(&self) -> &str {
        "k8s-cluster"
    }

    fn checks(&self) -> Vec<Check> {
        self.config.checks.checks()
    }

    fn target(&self) -> Option<compliance_core::Target> {
        Some(compliance_core::Target::k8s_cluster(&self.config.cluster).named(self.config.cluster.clone()))
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let mut out = Collection::default();
        let namespaces: Vec<Option<&str>> = if self.config.namespaces.is_empty() {
            vec![None]
        } else {
            self.config.namespaces.iter().map(|n| Some(n.as_str())).collect()
        };
        let unreachable = |reason: String| {
            compliance_core::Error::collect(
                "k8s-cluster",
                format!("cluster {} unreachable: {reason}", self.config.cluster),
            )
        };
        for ns in namespaces {
            self.list_kind::<Pod>(WorkloadKind::Pod, ns, scope, &mut out).await.map_err(unreachable)?;
            self.list_kind::<Deployment>(WorkloadKind::Deployment, ns, scope, &mut out).await.map_err(unreachable)?;
            self.list_kind::<StatefulSet>(WorkloadKind::StatefulSet, ns, scope, &mut out).await.map_err(unreachable)?;
            self.list_kind::<DaemonSet>(WorkloadKind::DaemonSet, ns, scope, &mut out).await.map_err(unreachable)?;
            self.list_kind::<ReplicaSet>(WorkloadKind::ReplicaSet, ns, scope, &mut out).await.map_err(unreachable)?;
            self.list_kind::<ReplicationController>(WorkloadKind::ReplicationController, ns, scope, &mut out)
                .await
                .map_err(unreachable)?;
            self.list_kind::<Job>(WorkloadKind::Job, ns, scope, &mut out).await.map_err(unreachable)?;
            self.list_kind::<CronJob>(WorkloadKind::CronJob, ns, scope, &mut out).await.map_err(unreachable)?;
        }
        info!(cluster = %self.config.cluster, evidence = out.evidence.len(), gaps = out.gaps.len(), "cluster judged");
        Ok(out)
    }
}
