//! The `Collector` trait: gathers evidence from one platform or source.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::check::{Check, CheckId};
use crate::error::Result;
use crate::evidence::Evidence;
use crate::waiver::glob_match;

/// What a run should look at.
///
/// ```
/// use compliance_core::{CheckId, Scope};
/// let scope = Scope::only(["k8s.pod.*"]);
/// assert!(scope.wants(&"k8s.pod.run_as_non_root".parse::<CheckId>()?));
/// assert!(!scope.wants(&"aws.s3.versioning".parse::<CheckId>()?));
/// assert!(Scope::all().wants(&"aws.s3.versioning".parse::<CheckId>()?));
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Scope {
    /// Check id patterns (`*` wildcard) to run; empty means every check.
    pub checks: Vec<String>,
}

impl Scope {
    /// Every check.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only the checks matching these patterns.
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(patterns: I) -> Self {
        Self { checks: patterns.into_iter().map(Into::into).collect() }
    }

    /// True when the check should run.
    pub fn wants(&self, check: &CheckId) -> bool {
        self.checks.is_empty() || self.checks.iter().any(|p| glob_match(p, check.as_str()))
    }
}

/// Why a source yielded no evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GapKind {
    /// A source (file, document, API list) could not be read or parsed.
    Unreadable,
    /// Permission was denied.
    Denied,
    /// The collector returned an error.
    Failed,
    /// The collector panicked.
    Panicked,
    /// The collector exceeded its time limit.
    TimedOut,
    /// The run was cancelled first.
    Cancelled,
}

/// An evidence gap: something that should have been judged and was not.
/// Gaps are reported, never counted as passes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Gap {
    /// The collector concerned (set by the engine).
    #[serde(default)]
    pub collector: String,
    /// The source that could not be read: a file and line, a namespace, an API.
    /// `None` when the whole collector is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What kind of gap.
    pub kind: GapKind,
    /// Why, for people.
    pub reason: String,
    /// The target it concerns (`aws:<account>`, `aws:<account>:<region>`,
    /// `k8s:<context>`; see [`crate::target`]), when the collector reaches several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Gap {
    /// A gap for one source of a collector.
    pub fn source(source: impl Into<String>, kind: GapKind, reason: impl Into<String>) -> Self {
        Self { collector: String::new(), source: Some(source.into()), kind, reason: reason.into(), target: None }
    }

    /// A gap for a whole collector.
    pub fn collector(collector: impl Into<String>, kind: GapKind, reason: impl Into<String>) -> Self {
        Self { collector: collector.into(), source: None, kind, reason: reason.into(), target: None }
    }

    /// Naming the target it concerns.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

/// What one collection produced: evidence, and the sources it could not read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Collection {
    /// Evidence, one per check and resource.
    pub evidence: Vec<Evidence>,
    /// Sources that could not be read.
    pub gaps: Vec<Gap>,
    /// Checks found while collecting, beyond the collector's declared ones
    /// (the AWS Config rules of an account, discovered at run time): the
    /// run lists them with the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::Check>,
    /// Controls the source declared for its checks while collecting (an
    /// AWS Config conformance pack's `Controls`): the run's report maps
    /// them where a framework has that control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_controls: Vec<crate::DeclaredControl>,
    /// The targets the collection reached (accounts, regions, clusters),
    /// with their names and tags, for per-target scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::Target>,
}

impl Collection {
    /// A collection of evidence and gaps.
    pub fn new(evidence: Vec<Evidence>, gaps: Vec<Gap>) -> Self {
        Self { evidence, gaps, checks: Vec::new(), declared_controls: Vec::new(), targets: Vec::new() }
    }

    /// Adds another collection's evidence and gaps.
    pub fn extend(&mut self, other: Collection) {
        self.evidence.extend(other.evidence);
        self.gaps.extend(other.gaps);
        self.checks.extend(other.checks);
        self.declared_controls.extend(other.declared_controls);
        self.targets.extend(other.targets);
    }
}

impl From<Vec<Evidence>> for Collection {
    fn from(evidence: Vec<Evidence>) -> Self {
        Self::new(evidence, Vec::new())
    }
}

/// Gathers evidence from one platform or source.
///
/// A resource that could not be judged is an [`Status::Error`](crate::Status::Error)
/// evidence; a source that could not be read at all is a [`Gap`] in the
/// [`Collection`]; `Err` means the collector as a whole could not run. The
/// engine runs collectors concurrently, with a timeout, and turns an `Err`, a
/// panic or a timeout into a gap while the other collectors go on.
///
/// ```
/// use async_trait::async_trait;
/// use compliance_core::{Check, Collection, Collector, Evidence, ResourceRef, Scope, Severity, Status};
///
/// struct TlsCollector { check: Check }
///
/// #[async_trait]
/// impl Collector for TlsCollector {
///     fn name(&self) -> &str { "tls" }
///     fn checks(&self) -> Vec<Check> { vec![self.check.clone()] }
///     async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
///         if !scope.wants(&self.check.id) { return Ok(Collection::default()); }
///         let site = ResourceRef::new("web", "Site", "https://example.com", "example.com");
///         Ok(vec![Evidence::new(&self.check, site, Status::Pass, "TLS 1.3 only")].into())
///     }
/// }
/// # let _ = Check::new("web.tls.modern", "Modern TLS", Severity::High, "Site");
/// ```
#[async_trait]
pub trait Collector: Send + Sync {
    /// Stable name, used in gaps, timings and reports.
    fn name(&self) -> &str;
    /// The checks this collector can produce evidence for.
    fn checks(&self) -> Vec<Check>;
    /// Gathers evidence for the checks in `scope`.
    async fn collect(&self, scope: &Scope) -> Result<Collection>;

    /// The one target this collector reaches (a Kubernetes cluster), if it
    /// is bound to one: the engine names it on the collector's gaps, a
    /// failure included, and lists it in the run. `None` by default.
    fn target(&self) -> Option<crate::Target> {
        None
    }

    /// How long the engine lets one collection run; `None` (the default):
    /// the engine's `collector_timeout`. A collector that bounds each of its
    /// many units of work itself (a fleet of accounts) gives a longer limit.
    fn timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// Like [`collect`](Self::collect), reporting progress on long work
    /// (targets done of total); the engine calls this one. The default
    /// reports nothing.
    async fn collect_with_progress(&self, scope: &Scope, progress: crate::Progress) -> Result<Collection> {
        let _ = progress;
        self.collect(scope).await
    }
}
