//! The engine: runs collectors concurrently with a bound, a timeout per
//! collector and cancellation; isolates failures as gaps; applies waivers;
//! gates risky remediation behind an approver.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::check::Check;
use crate::collector::{Collection, Collector, Gap, GapKind, Scope};
use crate::error::{Error, Result};
use crate::evidence::Evidence;
use crate::framework::Framework;
use crate::remediation::{Approver, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk};
use crate::waiver::{ExpiredWaiver, Waiver, apply_waivers};

/// Limits of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How many collectors run at once.
    pub concurrency: usize,
    /// How long one collector may take before it becomes a gap.
    #[serde(with = "duration_secs")]
    pub collector_timeout: Duration,
    /// Plans at or above this risk need an [`Approver`]'s approval to apply.
    pub approval_threshold: Risk,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { concurrency: 4, collector_timeout: Duration::from_secs(300), approval_threshold: Risk::High }
    }
}

impl EngineConfig {
    /// Sets how many collectors run at once (0 is taken as 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the time limit of one collector.
    pub fn with_collector_timeout(mut self, timeout: Duration) -> Self {
        self.collector_timeout = timeout;
        self
    }

    /// Sets the risk from which plans need approval.
    pub fn with_approval_threshold(mut self, risk: Risk) -> Self {
        self.approval_threshold = risk;
        self
    }
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// What happened to one collector in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CollectorOutcome {
    /// It finished.
    Completed,
    /// It returned an error.
    Failed,
    /// It panicked.
    Panicked,
    /// It exceeded its time limit.
    TimedOut,
    /// The run was cancelled first.
    Cancelled,
}

/// Timing of one collector in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CollectorTiming {
    /// The collector.
    pub collector: String,
    /// When it started (after waiting for a concurrency slot).
    pub started_at: DateTime<Utc>,
    /// How long it ran, in milliseconds.
    pub elapsed_ms: u64,
    /// How it ended.
    pub outcome: CollectorOutcome,
    /// How much evidence it produced.
    pub evidence: usize,
}

/// One run of the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Run {
    /// Unique id.
    pub id: uuid::Uuid,
    /// Start (UTC).
    pub started_at: DateTime<Utc>,
    /// End (UTC).
    pub finished_at: DateTime<Utc>,
    /// The metadata of every check that could produce evidence in this run.
    pub checks: Vec<Check>,
    /// All evidence, in collector registration order.
    pub evidence: Vec<Evidence>,
    /// Everything that could not be judged.
    pub gaps: Vec<Gap>,
    /// Per-collector timings.
    pub timings: Vec<CollectorTiming>,
    /// Waivers that had expired and no longer applied.
    pub expired_waivers: Vec<ExpiredWaiver>,
    /// Controls sources declared for checks while collecting (see
    /// [`DeclaredControl`](crate::DeclaredControl)); reports and stored
    /// runs map them with the frameworks'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_controls: Vec<crate::DeclaredControl>,
    /// The targets the run reached, when collectors listed them (see [`crate::target`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::Target>,
}

impl Run {
    /// A run made of evidence observed outside the engine (an admission
    /// webhook, a watch that re-judged one object): it starts at the oldest
    /// evidence and ends now.
    ///
    /// ```
    /// use compliance_core::{Check, Evidence, ResourceRef, Run, Severity, Status};
    /// let check = Check::new("k8s.pod.run_as_non_root", "Containers run as non-root", Severity::High, "Workload")?;
    /// let pod = ResourceRef::new("k8s", "Pod", "shop/Pod/web", "web");
    /// let run = Run::from_evidence(vec![check.clone()], vec![Evidence::new(&check, pod, Status::Pass, "ok")]);
    /// assert_eq!(run.evidence.len(), 1);
    /// assert!(run.started_at <= run.finished_at);
    /// # Ok::<(), compliance_core::Error>(())
    /// ```
    pub fn from_evidence(checks: Vec<Check>, evidence: Vec<Evidence>) -> Self {
        let finished_at = Utc::now();
        let started_at = evidence.iter().map(|e| e.observed_at).min().unwrap_or(finished_at).min(finished_at);
        Run {
            id: uuid::Uuid::new_v4(),
            started_at,
            finished_at,
            checks,
            evidence,
            gaps: Vec::new(),
            timings: Vec::new(),
            expired_waivers: Vec::new(),
            declared_controls: Vec::new(),
            targets: Vec::new(),
        }
    }
}

/// Progress of a run, for a UI or a log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run started.
    RunStarted {
        /// The run's id.
        run_id: uuid::Uuid,
        /// How many collectors will run.
        collectors: usize,
    },
    /// A collector got a slot and started.
    CollectorStarted {
        /// The collector.
        collector: String,
    },
    /// A collector finished.
    CollectorFinished {
        /// The collector.
        collector: String,
        /// Evidence produced.
        evidence: usize,
        /// Source gaps reported.
        gaps: usize,
        /// Milliseconds taken.
        elapsed_ms: u64,
    },
    /// A collector that reaches many targets knows how many it will scan.
    TargetsPlanned {
        /// The collector.
        collector: String,
        /// How many targets.
        total: usize,
    },
    /// A collector finished one of its targets.
    TargetFinished {
        /// The collector.
        collector: String,
        /// The target (`aws:<account>`, `k8s:<context>`).
        target: String,
        /// Evidence from it.
        evidence: usize,
        /// Gaps of it.
        gaps: usize,
    },
    /// A collector failed, panicked, timed out or was cancelled.
    CollectorFailed {
        /// The collector.
        collector: String,
        /// The gap it became.
        reason: String,
    },
    /// The run finished.
    RunFinished {
        /// The run's id.
        run_id: uuid::Uuid,
        /// Evidence in total.
        evidence: usize,
        /// Gaps in total.
        gaps: usize,
    },
}

/// Options of one run: cancellation and a progress channel.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Cancel to stop the run: running collectors become `Cancelled` gaps.
    pub cancel: CancellationToken,
    /// Receives progress events.
    pub progress: Option<mpsc::UnboundedSender<ProgressEvent>>,
}

impl RunOptions {
    /// Sets the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Sets the progress channel.
    pub fn with_progress(mut self, progress: mpsc::UnboundedSender<ProgressEvent>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn emit(&self, event: ProgressEvent) {
        if let Some(tx) = &self.progress {
            // A dropped receiver only means nobody watches progress.
            let _ = tx.send(event);
        }
    }
}

/// A collector's handle to report progress on long work: targets planned
/// and finished. Without a watcher (the default) it reports nothing.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    collector: String,
    tx: Option<mpsc::UnboundedSender<ProgressEvent>>,
}

impl Progress {
    /// Reports nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// `total` targets will be scanned.
    pub fn targets_planned(&self, total: usize) {
        self.send(ProgressEvent::TargetsPlanned { collector: self.collector.clone(), total });
    }

    /// One target is done.
    pub fn target_finished(&self, target: &str, evidence: usize, gaps: usize) {
        let collector = self.collector.clone();
        self.send(ProgressEvent::TargetFinished { collector, target: target.to_owned(), evidence, gaps });
    }

    fn send(&self, event: ProgressEvent) {
        if let Some(tx) = &self.tx {
            // A dropped receiver only means nobody watches progress.
            let _ = tx.send(event);
        }
    }
}

/// Holds collectors, remediators, frameworks and waivers, and runs them.
///
/// ```
/// use std::sync::Arc;
/// use compliance_core::{Engine, Scope, Status};
/// use compliance_core::testkit::{InMemoryCollector, World, sample_check};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> compliance_core::Result<()> {
/// let world = World::default();
/// world.set("bucket-a", "demo.storage.encrypted", true);
/// world.set("bucket-b", "demo.storage.encrypted", false);
/// let collector = InMemoryCollector::new("demo", vec![sample_check("demo.storage.encrypted")?], world);
///
/// let engine = Engine::new().with_collector(Arc::new(collector));
/// let run = engine.run(&Scope::all()).await;
/// assert_eq!(run.evidence.len(), 2);
/// assert_eq!(run.evidence.iter().filter(|e| e.status == Status::Fail).count(), 1);
/// assert!(run.gaps.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Engine {
    config: EngineConfig,
    collectors: Vec<Arc<dyn Collector>>,
    remediators: Vec<Arc<dyn Remediator>>,
    frameworks: Vec<Arc<dyn Framework>>,
    waivers: Vec<Waiver>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("collectors", &self.collectors.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>())
            .field("remediators", &self.remediators.iter().map(|r| r.name().to_owned()).collect::<Vec<_>>())
            .field("frameworks", &self.frameworks.iter().map(|f| f.id().to_owned()).collect::<Vec<_>>())
            .field("waivers", &self.waivers.len())
            .finish()
    }
}

impl Engine {
    /// An engine with the default limits and nothing registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the limits. A concurrency of 0 is taken as 1.
    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Registers a collector.
    pub fn with_collector(mut self, collector: Arc<dyn Collector>) -> Self {
        self.collectors.push(collector);
        self
    }

    /// Registers a remediator.
    pub fn with_remediator(mut self, remediator: Arc<dyn Remediator>) -> Self {
        self.remediators.push(remediator);
        self
    }

    /// Registers a framework.
    pub fn with_framework(mut self, framework: Arc<dyn Framework>) -> Self {
        self.frameworks.push(framework);
        self
    }

    /// Adds waivers.
    pub fn with_waivers(mut self, waivers: impl IntoIterator<Item = Waiver>) -> Self {
        self.waivers.extend(waivers);
        self
    }

    /// The waivers, as given.
    pub fn waivers(&self) -> &[Waiver] {
        &self.waivers
    }

    /// The limits in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Every check of every registered collector, by id, each once.
    pub fn checks(&self) -> Vec<Check> {
        let mut by_id = BTreeMap::new();
        for c in &self.collectors {
            for check in c.checks() {
                by_id.entry(check.id.clone()).or_insert(check);
            }
        }
        by_id.into_values().collect()
    }

    /// The registered frameworks.
    pub fn frameworks(&self) -> &[Arc<dyn Framework>] {
        &self.frameworks
    }

    /// The registered remediators.
    pub fn remediators(&self) -> &[Arc<dyn Remediator>] {
        &self.remediators
    }

    /// Runs every collector on `scope` with default options.
    pub async fn run(&self, scope: &Scope) -> Run {
        self.run_with(scope, RunOptions::default()).await
    }

    /// Runs every collector on `scope`: at most `concurrency` at once, each
    /// within `collector_timeout`. A collector that errors, panics, times out
    /// or is cancelled becomes a gap; the others finish. Waivers are applied
    /// to the evidence at the end.
    pub async fn run_with(&self, scope: &Scope, options: RunOptions) -> Run {
        let run_id = uuid::Uuid::new_v4();
        let started_at = Utc::now();
        info!(%run_id, collectors = self.collectors.len(), "run started");
        options.emit(ProgressEvent::RunStarted { run_id, collectors: self.collectors.len() });

        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let scope = Arc::new(scope.clone());
        // Several collectors bound to one target each (clusters): their progress is counted in targets.
        let targeted = self.collectors.iter().filter(|c| c.target().is_some()).count();
        let count_targets = targeted > 1;
        if count_targets {
            options.emit(ProgressEvent::TargetsPlanned { collector: "engine".into(), total: targeted });
        }
        let mut handles = Vec::with_capacity(self.collectors.len());
        for collector in &self.collectors {
            let task = run_one(
                Arc::clone(collector),
                Arc::clone(&scope),
                Arc::clone(&slots),
                self.config.collector_timeout,
                options.clone(),
                count_targets,
            );
            handles.push(tokio::spawn(task));
        }

        // Every result first, so that the run's evidence list is allocated
        // once and each evidence is moved once (measured in the engine
        // benchmark: growing it collector by collector copied it again and
        // again).
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            results.push(handle.await);
        }
        let total = results.iter().map(|r| r.as_ref().map_or(0, |(c, _, _)| c.evidence.len())).sum();
        let mut evidence = Vec::with_capacity(total);
        let mut gaps = Vec::new();
        let mut discovered = Vec::new();
        let mut declared_controls = Vec::new();
        let mut targets: Vec<crate::Target> = Vec::new();
        let mut timings = Vec::with_capacity(results.len());
        for (collector, result) in self.collectors.iter().zip(results) {
            let name = collector.name().to_owned();
            match result {
                Ok((mut collection, mut gap, timing)) => {
                    // A collector bound to one target (a cluster) names it on its gaps and in the run.
                    if let Some(target) = collector.target() {
                        for g in collection.gaps.iter_mut().chain(gap.as_mut()).filter(|g| g.target.is_none()) {
                            g.target = Some(target.id.clone());
                        }
                        collection.targets.push(target);
                    }
                    evidence.extend(collection.evidence);
                    gaps.extend(collection.gaps);
                    discovered.extend(collection.checks);
                    declared_controls.extend(collection.declared_controls);
                    for t in collection.targets {
                        if !targets.iter().any(|known| known.id == t.id) {
                            targets.push(t);
                        }
                    }
                    gaps.extend(gap);
                    timings.push(timing);
                }
                // run_one catches the collector's own panics; reaching here
                // means the runtime dropped the task.
                Err(e) => gaps.push(Gap::collector(name, GapKind::Failed, format!("collector task lost: {e}"))),
            }
        }

        let finished_at = Utc::now();
        let expired_waivers = apply_waivers(&mut evidence, &self.waivers, finished_at);
        for x in &expired_waivers {
            info!(waiver = %x.waiver.id, expired = %x.waiver.expires, failures = x.failures_no_longer_waived, "waiver expired");
        }
        options.emit(ProgressEvent::RunFinished { run_id, evidence: evidence.len(), gaps: gaps.len() });
        info!(%run_id, evidence = evidence.len(), gaps = gaps.len(), "run finished");
        let mut checks = self.checks();
        for check in discovered {
            if !checks.iter().any(|c| c.id == check.id) {
                checks.push(check);
            }
        }
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        Run {
            id: run_id,
            started_at,
            finished_at,
            checks,
            evidence,
            gaps,
            timings,
            expired_waivers,
            declared_controls,
            targets,
        }
    }

    /// Plans a fix for one failing evidence with the first remediator that
    /// fixes its check; `None` when no remediator does or nothing needs doing.
    pub async fn plan(&self, evidence: &Evidence) -> Result<Option<RemediationPlan>> {
        let mut fixers = self.remediators.iter().filter(|r| r.fixes().contains(&evidence.check_id)).peekable();
        let Some(first) = fixers.peek().map(|r| r.name().to_owned()) else { return Ok(None) };
        for r in fixers {
            if r.handles(evidence) {
                return r.plan(evidence).await;
            }
        }
        // Some remediator fixes this check, none acts where the resource is: say so, never "nothing to do".
        Err(Error::remediation(
            first,
            format!(
                "no remediator acts on {} (its cluster or account is not one this run can change)",
                evidence.resource.id
            ),
        ))
    }

    /// Applies a plan through the remediator that made it. In
    /// [`Mode::Apply`], a plan at or above the approval threshold is first put
    /// to `approver`; a rejected plan is not applied
    /// ([`Error::NotApproved`]). An applied change must come back verified.
    pub async fn apply(
        &self,
        plan: &RemediationPlan,
        mode: Mode,
        approver: &dyn Approver,
    ) -> Result<RemediationOutcome> {
        let remediator =
            self.remediators.iter().find(|r| r.name() == plan.remediator).ok_or_else(|| {
                Error::remediation(plan.remediator.clone(), "no remediator of that name is registered")
            })?;
        let mut approval = None;
        if mode == Mode::Apply && plan.risk >= self.config.approval_threshold {
            let decision = approver.decide(plan).await;
            if !decision.approved {
                return Err(Error::NotApproved { plan_id: plan.id.clone(), reason: decision.reason });
            }
            approval = Some(decision);
        }
        let mut outcome = remediator.apply(plan, mode).await?;
        if outcome.applied && outcome.verification.is_none() {
            return Err(Error::remediation(
                plan.remediator.clone(),
                format!("plan {} was applied but not re-verified", plan.id),
            ));
        }
        outcome.approval = approval;
        info!(plan = %plan.id, ?mode, applied = outcome.applied, "remediation finished");
        Ok(outcome)
    }
}

async fn run_one(
    collector: Arc<dyn Collector>,
    scope: Arc<Scope>,
    slots: Arc<Semaphore>,
    timeout: Duration,
    options: RunOptions,
    count_target: bool,
) -> (Collection, Option<Gap>, CollectorTiming) {
    let name = collector.name().to_owned();
    let finished_target = |evidence: usize, gaps: usize| {
        if let Some(target) = collector.target().filter(|_| count_target) {
            options.emit(ProgressEvent::TargetFinished { collector: name.clone(), target: target.id, evidence, gaps });
        }
    };
    // Wait for a slot, unless the run is cancelled first.
    let permit = tokio::select! {
        permit = slots.acquire_owned() => permit.ok(),
        () = options.cancel.cancelled() => None,
    };
    let started_at = Utc::now();
    let start = Instant::now();
    let finish = |outcome, evidence, reason: Option<String>, kind| {
        let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let gap = reason.map(|r| {
            warn!(collector = %name, reason = %r, "collector became a gap");
            options.emit(ProgressEvent::CollectorFailed { collector: name.clone(), reason: r.clone() });
            Gap::collector(name.clone(), kind, r)
        });
        (gap, CollectorTiming { collector: name.clone(), started_at, elapsed_ms, outcome, evidence })
    };
    if permit.is_none() {
        let (gap, timing) = finish(
            CollectorOutcome::Cancelled,
            0,
            Some("run cancelled before the collector started".into()),
            GapKind::Cancelled,
        );
        return (Collection::default(), gap, timing);
    }
    options.emit(ProgressEvent::CollectorStarted { collector: name.clone() });
    debug!(collector = %name, "collector started");

    // The collection runs in a task of its own so that a panic is caught as
    // a JoinError and a timeout or cancellation can abort it.
    let inner = {
        let collector = Arc::clone(&collector);
        let scope = Arc::clone(&scope);
        let progress = Progress { collector: name.clone(), tx: options.progress.clone() };
        tokio::spawn(async move { collector.collect_with_progress(&scope, progress).await })
    };
    let timeout = collector.timeout().unwrap_or(timeout);
    let abort = inner.abort_handle();
    let result = tokio::select! {
        joined = tokio::time::timeout(timeout, inner) => match joined {
            Ok(Ok(Ok(collection))) => Ok(collection),
            Ok(Ok(Err(e))) => {
                let kind = if e.is_permission_denied() { GapKind::Denied } else { GapKind::Failed };
                Err((CollectorOutcome::Failed, kind, e.to_string()))
            }
            Ok(Err(join)) if join.is_panic() => Err((CollectorOutcome::Panicked, GapKind::Panicked, format!("collector {name} panicked: {}", panic_message(join)))),
            Ok(Err(join)) => Err((CollectorOutcome::Failed, GapKind::Failed, format!("collector {name} task failed: {join}"))),
            Err(_) => {
                abort.abort();
                Err((CollectorOutcome::TimedOut, GapKind::TimedOut, Error::Timeout { collector: name.clone(), timeout }.to_string()))
            }
        },
        () = options.cancel.cancelled() => {
            abort.abort();
            Err((CollectorOutcome::Cancelled, GapKind::Cancelled, Error::Cancelled { collector: name.clone() }.to_string()))
        }
    };
    drop(permit);
    match result {
        Ok(mut collection) => {
            // A collector that runs others (a fleet) names them itself.
            let shared: Arc<str> = Arc::from(name.as_str());
            for e in collection.evidence.iter_mut().filter(|e| e.collector.is_empty()) {
                e.collector = Arc::clone(&shared);
            }
            for g in collection.gaps.iter_mut().filter(|g| g.collector.is_empty()) {
                g.collector.clone_from(&name);
            }
            let (_, timing) = finish(CollectorOutcome::Completed, collection.evidence.len(), None, GapKind::Failed);
            options.emit(ProgressEvent::CollectorFinished {
                collector: name.clone(),
                evidence: collection.evidence.len(),
                gaps: collection.gaps.len(),
                elapsed_ms: timing.elapsed_ms,
            });
            finished_target(collection.evidence.len(), collection.gaps.len());
            (collection, None, timing)
        }
        Err((outcome, kind, reason)) => {
            let (gap, timing) = finish(outcome, 0, Some(reason), kind);
            finished_target(0, 1);
            (Collection::default(), gap, timing)
        }
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".into()),
        Err(e) => e.to_string(),
    }
}
