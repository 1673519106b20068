//! The Kubernetes provider: its catalogue, and the collectors, remediator
//! and watcher that one serde configuration section asks for.
//!
//! ```
//! use compliance_core::{Provider, Registry, Scope};
//! use compliance_k8s::K8sProvider;
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("k8s-provider-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("pod.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx:1.27}]\n")?;
//! let registry = Registry::new().with(K8sProvider);
//! let mut sections = compliance_core::provider::Sections::new();
//! sections.insert("k8s".into(), serde_json::json!({ "manifests": [dir] }));
//! let wiring = registry.build(&sections).await?;
//! let run = wiring.engine().run(&Scope::only(["k8s.container.memory_limit"])).await;
//! assert_eq!(run.evidence.len(), 1);
//! # std::fs::remove_dir_all(&dir)?; Ok(()) }
//! ```

use std::path::PathBuf;
#[cfg(feature = "cluster")]
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::provider::{Wiring, parse_config};
use compliance_core::{Check, Error, Provider};
use serde::{Deserialize, Serialize};

use crate::config::CheckConfig;
use crate::manifests::ManifestCollector;
use crate::remediate::FixDefaults;

/// The `k8s` section of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct K8sConfig {
    /// Manifest files and folders to judge.
    pub manifests: Vec<PathBuf>,
    /// Judge the live cluster (feature `cluster`), and fix it on request.
    pub cluster: bool,
    /// The kubeconfig context; the current one, or the in-cluster
    /// configuration, when unset.
    pub context: Option<String>,
    /// Several kubeconfig contexts, judged concurrently (instead of `context`).
    pub contexts: Vec<String>,
    /// Every context of the kubeconfig.
    pub all_contexts: bool,
    /// Only the contexts of this shard (`K/N`, by a stable hash of the name).
    pub shard: Option<compliance_core::Shard>,
    /// Namespaces of the live cluster to judge; all when empty.
    pub namespaces: Vec<String>,
    /// Labels `k8s.workload.required_labels` demands; the default three when empty.
    pub required_labels: Vec<String>,
    /// Rego policy files and folders (feature `rego`).
    pub rego_policies: Vec<PathBuf>,
    /// Time limit of one policy evaluation, in milliseconds.
    pub rego_eval_limit_ms: u64,
    /// Values the fixes set.
    pub fix: FixDefaults,
}

impl Default for K8sConfig {
    fn default() -> Self {
        Self {
            manifests: Vec::new(),
            cluster: false,
            context: None,
            contexts: Vec::new(),
            all_contexts: false,
            shard: None,
            namespaces: Vec::new(),
            required_labels: Vec::new(),
            rego_policies: Vec::new(),
            rego_eval_limit_ms: 1000,
            fix: FixDefaults::default(),
        }
    }
}

/// Kubernetes: workloads in manifests, live clusters and admission requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct K8sProvider;

impl K8sProvider {
    /// The check settings a configuration asks for (required labels, Rego
    /// policies), and a wiring with no collector that carries the policies'
    /// checks, controls and load errors. The admission webhook judges with
    /// these settings.
    pub fn check_config(config: &K8sConfig) -> compliance_core::Result<(CheckConfig, Wiring)> {
        let mut wiring = Wiring::default();
        let mut checks = CheckConfig::default();
        if !config.required_labels.is_empty() {
            checks = checks.with_required_labels(
                config.required_labels.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).map(str::to_owned),
            );
        }
        load_policies(config, &mut checks, &mut wiring)?;
        Ok((checks, wiring))
    }

    /// Builds from the typed configuration.
    pub async fn build_config(&self, config: &K8sConfig) -> compliance_core::Result<Wiring> {
        let (checks, mut wiring) = Self::check_config(config)?;
        if !config.manifests.is_empty() {
            wiring = wiring.with_collector(std::sync::Arc::new(
                ManifestCollector::new(config.manifests.clone()).with_config(checks.clone()),
            ));
        }
        if config.cluster {
            wiring = cluster(config, checks, wiring).await?;
        }
        Ok(wiring)
    }
}

#[async_trait]
impl Provider for K8sProvider {
    fn name(&self) -> &'static str {
        "k8s"
    }

    fn checks(&self) -> Vec<Check> {
        crate::rules::checks()
    }

    fn knows(&self, id: &compliance_core::CheckId) -> bool {
        crate::rules::catalogue().contains(id)
    }

    async fn build(&self, config: &serde_json::Value) -> compliance_core::Result<Wiring> {
        let config: K8sConfig = parse_config(self.name(), config)?;
        self.build_config(&config).await
    }
}

/// Loads the Rego policies: each one that does not load is a gap naming its
/// file and line, and the others are used; their checks and controls join
/// the wiring.
#[cfg(feature = "rego")]
fn load_policies(config: &K8sConfig, checks: &mut CheckConfig, wiring: &mut Wiring) -> compliance_core::Result<()> {
    use compliance_core::provider::ControlMapping;
    use compliance_core::{Gap, GapKind};

    use crate::rego::{RegoConfig, RegoError, RegoPolicies};

    if config.rego_policies.is_empty() {
        return Ok(());
    }
    let rego = RegoConfig::default().with_eval_limit(std::time::Duration::from_millis(config.rego_eval_limit_ms));
    let (policies, errors) = RegoPolicies::load(&config.rego_policies, &rego);
    for e in errors {
        let source = match &e {
            RegoError::Invalid { path, line: Some(line), .. } => format!("{path}:{line}"),
            RegoError::Invalid { path, .. } | RegoError::Read { path, .. } => path.clone(),
        };
        let mut gap = Gap::source(source, GapKind::Unreadable, e.to_string());
        gap.collector = "rego-policies".into();
        wiring.gaps.push(gap);
    }
    for policy in policies.policies() {
        for (framework, controls) in policy.controls() {
            for control in controls {
                wiring.mappings.push(ControlMapping::new(
                    framework,
                    control,
                    policy.check().id.clone(),
                    policy.source(),
                ));
            }
        }
    }
    wiring.checks.extend(policies.checks());
    *checks = std::mem::take(checks).with_policies(policies);
    Ok(())
}

#[cfg(not(feature = "rego"))]
fn load_policies(config: &K8sConfig, _: &mut CheckConfig, _: &mut Wiring) -> compliance_core::Result<()> {
    if config.rego_policies.is_empty() {
        return Ok(());
    }
    Err(Error::Unsupported {
        operation: "k8s.rego_policies".into(),
        implementer: "compliance-k8s without feature rego".into(),
    })
}

#[cfg(feature = "cluster")]
async fn cluster(config: &K8sConfig, checks: CheckConfig, wiring: Wiring) -> compliance_core::Result<Wiring> {
    use crate::cluster::{ClusterCollector, ClusterConfig};
    use crate::remediate::WorkloadRemediator;

    let contexts: Vec<String> = if config.all_contexts {
        let kubeconfig = kube::config::Kubeconfig::read().map_err(|e| Error::Config {
            field: "k8s.all_contexts".into(),
            message: format!("kubeconfig: {e}"),
            source: Some(Box::new(e)),
        })?;
        kubeconfig.contexts.into_iter().map(|c| c.name).collect()
    } else {
        config.contexts.clone()
    };
    let shard = config.shard.unwrap_or(compliance_core::Shard::ALL);
    let several = !contexts.is_empty();
    let contexts: Vec<String> = contexts.into_iter().filter(|c| shard.owns(c)).collect();
    if several && contexts.is_empty() {
        return Ok(wiring);
    }
    if contexts.is_empty() {
        let (client, name) = kube_client(config.context.as_deref()).await?;
        let mut cluster =
            ClusterConfig::default().with_cluster(name.clone()).with_namespaces(config.namespaces.clone());
        cluster.checks = checks;
        let collector = Arc::new(ClusterCollector::new(client.clone(), cluster));
        let remediator = WorkloadRemediator::new(client).with_defaults(config.fix.clone()).with_cluster(name);
        return Ok(wiring
            .with_collector(collector.clone())
            .with_watcher(collector)
            .with_remediator(Arc::new(remediator)));
    }
    // Several clusters: one collector each (the engine runs them concurrently),
    // and a context that cannot even be set up is one gap naming it.
    let mut wiring = wiring;
    for context in contexts {
        let (client, name) = match kube_client(Some(&context)).await {
            Ok(found) => found,
            Err(e) => {
                let target = compliance_core::Target::k8s_cluster(&context);
                let gap =
                    compliance_core::Gap::collector("k8s-cluster", compliance_core::GapKind::Failed, e.to_string())
                        .with_target(target.id);
                wiring.gaps.push(gap);
                continue;
            }
        };
        let mut cluster =
            ClusterConfig::default().with_cluster(name.clone()).with_namespaces(config.namespaces.clone());
        cluster.checks = checks.clone();
        let collector = Arc::new(ClusterCollector::new(client.clone(), cluster));
        let remediator =
            WorkloadRemediator::new(client).with_defaults(config.fix.clone()).with_cluster(name).named_after_cluster();
        wiring = wiring.with_collector(collector.clone()).with_watcher(collector).with_remediator(Arc::new(remediator));
    }
    Ok(wiring)
}

#[cfg(not(feature = "cluster"))]
async fn cluster(_: &K8sConfig, _: CheckConfig, _: Wiring) -> compliance_core::Result<Wiring> {
    Err(Error::Unsupported {
        operation: "k8s.cluster".into(),
        implementer: "compliance-k8s without feature cluster".into(),
    })
}

/// A client for a kubeconfig context (or the current one, or the in-cluster
/// configuration), and the cluster's name for resource ids.
#[cfg(feature = "cluster")]
pub async fn kube_client(context: Option<&str>) -> compliance_core::Result<(kube::Client, String)> {
    fn config_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Config { field: "k8s.context".into(), message: format!("{what}: {e}"), source: Some(Box::new(e)) }
    }
    let options = kube::config::KubeConfigOptions { context: context.map(str::to_owned), ..Default::default() };
    let mut config = match context {
        Some(_) => kube::Config::from_kubeconfig(&options).await.map_err(|e| config_error("kubeconfig", e))?,
        None => {
            kube::Config::infer().await.map_err(|e| config_error("no usable kubeconfig or in-cluster config", e))?
        }
    };
    let name = match context {
        Some(c) => c.to_owned(),
        None => {
            kube::config::Kubeconfig::read().ok().and_then(|k| k.current_context).unwrap_or_else(|| "in-cluster".into())
        }
    };
    // Retries are ours (the cluster collector retries 429 and 5xx a bounded
    // number of times, then names a gap): kube's default policy retries up to
    // 15 times with delays growing to 1,000 s, which would hold a throttled
    // scan for many minutes.
    config.default_retry = false;
    let client = kube::Client::try_from(config).map_err(|e| config_error("kube client", e))?;
    Ok((client, name))
}
