//! Providers and their registry: one door for every platform.
//!
//! A provider (Kubernetes, AWS, your own) exposes its check catalogue, says
//! which check ids are its own (including ids it discovers at run time, such
//! as AWS Config rules), and builds its collectors, remediators and watchers
//! from one serde configuration section. The command line, the monitor and an
//! embedding service loop over a [`Registry`] instead of wiring each provider
//! by hand.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use compliance_core::provider::{Provider, Registry, Wiring, parse_config};
//! use compliance_core::testkit::{InMemoryCollector, World, sample_check};
//! use compliance_core::{Check, Scope};
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default, deny_unknown_fields)]
//! struct DemoConfig { databases: Vec<String> }
//!
//! struct Demo;
//!
//! #[async_trait]
//! impl Provider for Demo {
//!     fn name(&self) -> &'static str { "demo" }
//!     fn checks(&self) -> Vec<Check> { sample_check("demo.db.backups").into_iter().collect() }
//!     async fn build(&self, config: &serde_json::Value) -> compliance_core::Result<Wiring> {
//!         let config: DemoConfig = parse_config(self.name(), config)?;
//!         let world = World::default();
//!         for db in &config.databases { world.set(db, "demo.db.backups", true); }
//!         let collector = InMemoryCollector::new("demo", self.checks(), world);
//!         Ok(Wiring::default().with_collector(Arc::new(collector)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> compliance_core::Result<()> {
//! let registry = Registry::new().with(Demo);
//! let mut sections = BTreeMap::new();
//! sections.insert("demo".to_owned(), serde_json::json!({ "databases": ["db-1"] }));
//! let wiring = registry.build(&sections).await?;
//! let run = wiring.engine().run(&Scope::all()).await;
//! assert_eq!(run.evidence.len(), 1);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::check::{Check, CheckId};
use crate::collector::{Collection, Collector, Gap, Scope};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::remediation::Remediator;

/// Follows a live source and yields what changed, judged, as it changes
/// (a Kubernetes watch). The monitor merges these between its scans.
pub trait Watcher: Send + Sync {
    /// Stable name, for logs.
    fn name(&self) -> &str;
    /// A stream of judged changes for the checks in `scope`; it ends when the
    /// source can no longer be followed.
    fn watch(&self, scope: Scope) -> BoxStream<'static, Collection>;
}

/// A control that a configured check declares it supports (a Rego policy's
/// metadata does): merged into the framework of that id when it is loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlMapping {
    /// Framework id (`soc2`).
    pub framework: String,
    /// Control id (`CC6.1`).
    pub control: String,
    /// The check.
    pub check: CheckId,
    /// Where the mapping was declared (a file), for gaps when it is wrong.
    pub source: String,
}

impl ControlMapping {
    /// A mapping.
    pub fn new(
        framework: impl Into<String>,
        control: impl Into<String>,
        check: CheckId,
        source: impl Into<String>,
    ) -> Self {
        Self { framework: framework.into(), control: control.into(), check, source: source.into() }
    }
}

/// What a provider built from its configuration.
#[derive(Default)]
#[non_exhaustive]
pub struct Wiring {
    /// Collectors, run by the engine.
    pub collectors: Vec<Arc<dyn Collector>>,
    /// Remediators, for `remediate` and the monitor's fixes.
    pub remediators: Vec<Arc<dyn Remediator>>,
    /// Live sources to follow between scans.
    pub watchers: Vec<Arc<dyn Watcher>>,
    /// Checks that exist only once configured (Rego policies), beside the catalogue.
    pub checks: Vec<Check>,
    /// Controls that configured checks declare.
    pub mappings: Vec<ControlMapping>,
    /// Parts of the configuration that could not be set up (a policy that
    /// does not compile): shown as gaps of every run, while the rest works.
    pub gaps: Vec<Gap>,
}

impl Wiring {
    /// Adds a collector.
    pub fn with_collector(mut self, collector: Arc<dyn Collector>) -> Self {
        self.collectors.push(collector);
        self
    }

    /// Adds a remediator.
    pub fn with_remediator(mut self, remediator: Arc<dyn Remediator>) -> Self {
        self.remediators.push(remediator);
        self
    }

    /// Adds a watcher.
    pub fn with_watcher(mut self, watcher: Arc<dyn Watcher>) -> Self {
        self.watchers.push(watcher);
        self
    }

    /// Adds another provider's wiring.
    pub fn extend(&mut self, other: Wiring) {
        self.collectors.extend(other.collectors);
        self.remediators.extend(other.remediators);
        self.watchers.extend(other.watchers);
        self.checks.extend(other.checks);
        self.mappings.extend(other.mappings);
        self.gaps.extend(other.gaps);
    }

    /// An engine with these collectors and remediators (add frameworks and
    /// waivers with the engine's own builders). The `mappings` go into the
    /// frameworks (`compliance_report::apply_mappings`), and the `gaps` into
    /// every run (`Monitor::with_standing_gaps`, or `run.gaps`): the engine
    /// holds neither.
    pub fn engine(&self) -> Engine {
        let mut engine = Engine::new();
        for c in &self.collectors {
            engine = engine.with_collector(Arc::clone(c));
        }
        for r in &self.remediators {
            engine = engine.with_remediator(Arc::clone(r));
        }
        engine
    }
}

/// One platform: its catalogue, its check ids, and how it is built.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Stable name, the key of its configuration section (`k8s`, `aws`).
    fn name(&self) -> &'static str;

    /// The built-in checks (its catalogues).
    fn checks(&self) -> Vec<Check>;

    /// True when `id` is one of this provider's checks, including ids it
    /// discovers at run time.
    fn knows(&self, id: &CheckId) -> bool {
        self.checks().iter().any(|c| &c.id == id)
    }

    /// Builds collectors, remediators and watchers from the provider's
    /// configuration section. A configuration error is [`Error::Config`],
    /// naming the field.
    async fn build(&self, config: &serde_json::Value) -> Result<Wiring>;
}

/// Reads a provider's configuration section into its typed form; errors name
/// the provider and the field (`k8s.manifests[0]: invalid type ...`).
pub fn parse_config<T: DeserializeOwned>(provider: &str, value: &serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { provider.to_owned() } else { format!("{provider}.{path}") };
        let message = e.inner().to_string();
        Error::Config { field, message, source: Some(Box::new(e.into_inner())) }
    })
}

/// The providers a program knows, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a provider; a provider of the same name is replaced.
    pub fn with(mut self, provider: impl Provider + 'static) -> Self {
        self.register(Arc::new(provider));
        self
    }

    /// Registers a shared provider; a provider of the same name is replaced.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.retain(|p| p.name() != provider.name());
        self.providers.push(provider);
    }

    /// The providers.
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// The provider of this name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// Every built-in check of every provider, sorted by id.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks: Vec<Check> = self.providers.iter().flat_map(|p| p.checks()).collect();
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        checks
    }

    /// True when some provider knows the check.
    pub fn knows(&self, id: &CheckId) -> bool {
        self.providers.iter().any(|p| p.knows(id))
    }

    /// Builds every provider that has a section in `sections` (keyed by
    /// provider name). A section for no registered provider is an error.
    pub async fn build(&self, sections: &BTreeMap<String, serde_json::Value>) -> Result<Wiring> {
        if let Some(unknown) = sections.keys().find(|k| self.get(k).is_none()) {
            let known: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
            return Err(Error::Config {
                field: unknown.clone(),
                message: format!("no such provider in this build; known: {}", known.join(", ")),
                source: None,
            });
        }
        let mut wiring = Wiring::default();
        for provider in &self.providers {
            if let Some(section) = sections.get(provider.name()) {
                wiring.extend(provider.build(section).await?);
            }
        }
        Ok(wiring)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.iter().map(|p| p.name())).finish()
    }
}

/// The configuration sections of a registry, keyed by provider name, as a
/// serde type (a YAML or JSON object of objects).
pub type Sections = BTreeMap<String, serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait]
    impl Provider for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn checks(&self) -> Vec<Check> {
            Vec::new()
        }
        async fn build(&self, config: &serde_json::Value) -> Result<Wiring> {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            #[allow(dead_code)]
            struct Config {
                paths: Vec<String>,
            }
            let _: Config = parse_config(self.0, config)?;
            Ok(Wiring::default())
        }
    }

    #[tokio::test]
    async fn configuration_errors_name_the_provider_and_field() {
        let registry = Registry::new().with(Named("demo"));
        let mut sections = Sections::new();
        sections.insert("demo".into(), serde_json::json!({ "paths": [1] }));
        let err = registry.build(&sections).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("demo.paths[0]: invalid type"), "{err}");
        sections.clear();
        sections.insert("nope".into(), serde_json::json!({}));
        let err = registry.build(&sections).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("nope: no such provider in this build; known: demo"), "{err}");
    }

    #[test]
    fn a_provider_registered_twice_is_replaced() {
        let registry = Registry::new().with(Named("a")).with(Named("b")).with(Named("a"));
        let names: Vec<&str> = registry.providers().iter().map(|p| p.name()).collect();
        assert_eq!(names, ["b", "a"]);
    }
}
