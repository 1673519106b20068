#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod alert;
mod checkpoints;
mod fix;
mod serve;
mod settings;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::provider::Watcher;
use compliance_core::store::EvidenceStore;
use compliance_core::{CancellationToken, Collection, Engine, Evidence, Gap, Run, RunOptions, Scope};
use compliance_report::Report;
use compliance_report::notify::Notification;
use futures::stream::BoxStream;
use tracing::{error, info, warn};

pub use alert::{endpoint_of, post_json};
pub use checkpoints::CheckpointSigning;
pub use fix::{apply_and_record, plan_still_holds};
pub use settings::{
    AlertConfig, AlertFormat, MonitorSettings, RemediationConfig, RemediationMode, duration, parse_duration,
};

use crate::alert::Alerter;
use crate::serve::SharedState;

/// The monitor: what it scans (an engine and a scope), where runs go (a
/// store), what fixes failures (an engine of remediators), what it follows
/// between scans (watchers), and its settings.
pub struct Monitor {
    engine: Engine,
    scope: Scope,
    store: Arc<dyn EvidenceStore>,
    remediators: Engine,
    watchers: Vec<Arc<dyn Watcher>>,
    standing_gaps: Vec<Gap>,
    settings: MonitorSettings,
    state: SharedState,
    on_run: Option<RunCallback>,
    sinks: Vec<Arc<dyn ReportSink>>,
    checkpoints: Option<CheckpointSigning>,
}

/// Called with each processed run's source (`monitor`, `watch`) and report.
pub type RunCallback = Box<dyn Fn(&str, &Report) + Send + Sync>;

/// Somewhere each processed run's report goes after it is stored: a
/// cluster's PolicyReports, a bucket, a ticket system. A sink that fails is
/// logged and makes the cycle an error in `/metrics`; the run stays stored
/// and the next run publishes again.
#[async_trait::async_trait]
pub trait ReportSink: Send + Sync {
    /// A short name for logs (`policy-reports`).
    fn name(&self) -> &str;

    /// Publishes `report` of a run from `source` (`monitor` for a scheduled
    /// scan, `watch` for the objects that changed between scans); returns a
    /// one-line summary of what was done. A sink may skip watch runs.
    async fn publish(&self, source: &str, report: &Report) -> Result<String, String>;
}

impl Monitor {
    /// A monitor of `engine`'s collectors (with its frameworks and waivers),
    /// storing every run in `store`.
    pub fn new(engine: Engine, store: Arc<dyn EvidenceStore>, settings: MonitorSettings) -> Self {
        Self {
            engine,
            scope: Scope::all(),
            store,
            remediators: Engine::new(),
            watchers: Vec::new(),
            standing_gaps: Vec::new(),
            settings,
            state: SharedState::default(),
            on_run: None,
            sinks: Vec::new(),
            checkpoints: None,
        }
    }

    /// Only the checks in `scope`.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Remediators for the remediation policy of the settings.
    pub fn with_remediators(mut self, remediators: Engine) -> Self {
        self.remediators = remediators;
        self
    }

    /// Live sources to follow between scans, when the settings say `watch`.
    pub fn with_watchers(mut self, watchers: Vec<Arc<dyn Watcher>>) -> Self {
        self.watchers = watchers;
        self
    }

    /// Gaps every run carries (parts of the configuration that could not be
    /// set up, such as a policy that does not compile).
    pub fn with_standing_gaps(mut self, gaps: Vec<Gap>) -> Self {
        self.standing_gaps = gaps;
        self
    }

    /// Calls `callback` with every processed run: to print a summary, to
    /// export the report elsewhere.
    pub fn on_run(mut self, callback: impl Fn(&str, &Report) + Send + Sync + 'static) -> Self {
        self.on_run = Some(Box::new(callback));
        self
    }

    /// Publishes every processed run's report to `sink` as well, after the
    /// run is stored.
    pub fn with_sink(mut self, sink: Arc<dyn ReportSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Signs the chain's head after every stored run and stores the
    /// checkpoint (and copies it where `signing` says), so that `evidence
    /// verify --public-key` catches a chain rewritten as a whole.
    pub fn with_checkpoints(mut self, signing: CheckpointSigning) -> Self {
        self.checkpoints = Some(signing);
        self
    }

    /// `/metrics` and `/healthz`, to serve alone or merge into your own router.
    pub fn router(&self) -> axum::Router {
        serve::router(Arc::clone(&self.state))
    }

    /// Runs until `stop` is cancelled or `cycles` scans are done; returns the
    /// number of scans. A scan in progress when `stop` is cancelled is
    /// cancelled too: its collectors become gaps and the run is still stored.
    pub async fn run(&self, stop: CancellationToken, cycles: Option<u64>) -> u64 {
        let previous = self.previous_report().await;
        if let Some(p) = &previous {
            info!(run = %p.run_id, "continuing from the last stored run");
        }
        let alerter = self.settings.alerts.clone().map(Alerter::new);
        let mut changes = self.changes();
        let mut cycle = Cycle { monitor: self, alerter, previous, unstored: std::collections::VecDeque::new() };
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut done = 0_u64;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
                Some(first) = next_change(&mut changes) => {
                    // A rollout changes several objects at once: judge what changed within half a second together.
                    let mut evidence = first.evidence;
                    let mut gaps = first.gaps;
                    while let Ok(Some(more)) = tokio::time::timeout(Duration::from_millis(500), next_change(&mut changes)).await {
                        evidence.extend(more.evidence);
                        gaps.extend(more.gaps);
                    }
                    info!(evidence = evidence.len(), "changes judged");
                    let mut run = Run::from_evidence(self.engine.checks(), evidence);
                    run.gaps = gaps;
                    let base = cycle.previous.clone();
                    let processed = cycle.process(run, base, "watch").await;
                    cycle.publish(processed, done).await;
                    continue;
                }
            }
            done += 1;
            let mut run =
                self.engine.run_with(&self.scope, RunOptions::default().with_cancel(stop.child_token())).await;
            run.gaps.extend(self.standing_gaps.iter().cloned());
            let processed = cycle.process(run, None, "monitor").await;
            cycle.publish(processed, done).await;
            if cycles.is_some_and(|n| done >= n) {
                break;
            }
        }
        done
    }

    /// Every watcher's changes, merged; none without `watch`.
    fn changes(&self) -> Option<BoxStream<'static, Collection>> {
        if !self.settings.watch || self.watchers.is_empty() {
            return None;
        }
        let streams: Vec<_> = self.watchers.iter().map(|w| w.watch(self.scope.clone())).collect();
        Some(Box::pin(futures::stream::select_all(streams)))
    }

    /// What the store knows now, as a report: the latest evidence per check
    /// and resource (a watch's partial runs included), dated by the last
    /// run. The first run after a restart is compared with it.
    async fn previous_report(&self) -> Option<Report> {
        let last = self.store.runs(None, None).await.ok()?.pop()?;
        let evidence = self.store.latest().await.ok()?;
        let mut run = Run::from_evidence(self.engine.checks(), evidence);
        if let Ok(id) = last.id.parse() {
            run.id = id;
        }
        run.finished_at = last.finished_at;
        run.declared_controls = last.declared_controls;
        run.targets = last.targets;
        Some(Report::from_owned_run(run, self.engine.frameworks()))
    }
}

/// The next change a watch saw; never, without a watch.
async fn next_change(changes: &mut Option<BoxStream<'static, Collection>>) -> Option<Collection> {
    match changes {
        Some(stream) => futures::StreamExt::next(stream).await,
        None => std::future::pending().await,
    }
}

/// A processed run: its report, the cycle's error, its new failures.
type Processed = (Report, Option<String>, usize);

/// Runs kept in memory when the store could not take them (a database
/// restarting), stored first at the next cycle. Beyond this many, the
/// oldest is given up, with an error in the log.
const UNSTORED_RUNS_KEPT: usize = 16;

/// What every run goes through, from a scan or a watch.
struct Cycle<'a> {
    monitor: &'a Monitor,
    alerter: Option<Alerter>,
    previous: Option<Report>,
    /// Runs the store refused, oldest first, with their source.
    unstored: std::collections::VecDeque<(Run, String)>,
}

impl Cycle<'_> {
    /// Stores the run, compares it with the previous report, alerts, plans
    /// fixes, prunes. A watch run covers only the objects that changed: the
    /// report it is compared as is the previous one with those evidence
    /// replaced (`base`).
    async fn process(&mut self, run: Run, base: Option<Report>, source: &str) -> Processed {
        let m = self.monitor;
        // Runs the store could not take before go first, in order.
        while let Some((pending, pending_source)) = self.unstored.front() {
            match m.store.append_run(pending, m.engine.frameworks(), m.engine.waivers(), pending_source).await {
                Ok(s) => {
                    info!(run = %s.id, seq = s.seq, "a run kept while the store was unavailable is stored");
                    self.unstored.pop_front();
                }
                Err(_) => break,
            }
        }
        let stored = if self.unstored.is_empty() {
            m.store.append_run(&run, m.engine.frameworks(), m.engine.waivers(), source).await
        } else {
            Err(compliance_core::StoreError::Query {
                message: format!("{} earlier run(s) still wait for the store", self.unstored.len()),
                source: None,
            })
        };
        if stored.is_err() {
            if self.unstored.len() >= UNSTORED_RUNS_KEPT
                && let Some((lost, _)) = self.unstored.pop_front()
            {
                error!(run = %lost.id, "the store has been unavailable for {UNSTORED_RUNS_KEPT} runs: the oldest kept run is given up");
            }
            self.unstored.push_back((run.clone(), source.to_owned()));
        }
        let run = match base {
            Some(base) => {
                let changed: HashSet<(String, String)> =
                    run.evidence.iter().map(|e| (e.check_id.to_string(), e.resource.id.clone())).collect();
                let mut merged: Vec<Evidence> = base
                    .evidence
                    .into_iter()
                    .filter(|e| !changed.contains(&(e.check_id.to_string(), e.resource.id.clone())))
                    .collect();
                merged.extend(run.evidence);
                let mut whole = Run::from_evidence(run.checks, merged);
                whole.id = run.id;
                whole.gaps = base.gaps.into_iter().chain(run.gaps).collect();
                whole.declared_controls = base.declared_controls; // the last full run's, and the watch's new ones
                for d in run.declared_controls {
                    if !whole.declared_controls.contains(&d) {
                        whole.declared_controls.push(d);
                    }
                }
                whole.targets = base.targets.iter().map(compliance_report::TargetResult::target).collect();
                for t in run.targets {
                    if !whole.targets.iter().any(|known| known.id == t.id) {
                        whole.targets.push(t);
                    }
                }
                whole
            }
            None => run,
        };
        let mut report = Report::from_owned_run(run, m.engine.frameworks());
        if let Some(p) = &self.previous {
            report = report.with_delta_from(p);
        }
        let failing: Vec<Evidence> = report.evidence.iter().filter(|e| e.is_unwaived_failure()).cloned().collect();
        let mut cycle_error = match &stored {
            Ok(s) => {
                info!(run = %s.id, source, seq = s.seq, evidence = s.evidence, failures = s.failures, gaps = s.gaps, "run stored");
                None
            }
            Err(e) => {
                error!("run not stored yet (kept to store at the next cycle): {e}");
                Some(format!("run not stored: {e}"))
            }
        };
        if let Some(on_run) = &m.on_run {
            on_run(source, &report);
        }
        for sink in &m.sinks {
            match sink.publish(source, &report).await {
                Ok(summary) => info!(sink = sink.name(), "{summary}"),
                Err(e) => {
                    warn!(sink = sink.name(), "report not published: {e}");
                    cycle_error.get_or_insert_with(|| format!("{}: {e}", sink.name()));
                }
            }
        }
        if let Some(alerter) = self.alerter.as_mut() {
            alerter.offer(Notification::from_report(&report, alerter.config.min_severity)).await;
        }
        if let Ok(s) = &stored {
            fix::remediate(&m.remediators, m.store.as_ref(), &m.settings.remediation, &s.id, &failing).await;
        }
        if m.settings.retention != Default::default() {
            match m.store.prune(&m.settings.retention).await {
                Ok(p) if p.runs > 0 => info!(runs = p.runs, records = p.records, "history pruned"),
                Ok(_) => {}
                Err(e) => warn!("pruning failed: {e}"),
            }
        }
        // Last, so the checkpoint covers the run, its plans and any pruning.
        if let (Some(signing), Ok(_)) = (&m.checkpoints, &stored)
            && let Err(e) = signing.sign(m.store.as_ref()).await
        {
            warn!("{e}");
            cycle_error.get_or_insert(e);
        }
        let new_failures = report.delta.as_ref().map_or(failing.len(), |d| d.new_failures.len());
        (report, cycle_error, new_failures)
    }

    /// Makes a processed run what `/metrics` shows and what the next run is compared with.
    async fn publish(&mut self, (report, cycle_error, new_failures): Processed, cycles: u64) {
        {
            let mut shared = self.monitor.state.write().await;
            shared.violations_total += new_failures as u64;
            for e in &report.evidence {
                let t = e.observed_at.timestamp();
                let slot = shared.last_evidence.entry(e.collector.to_string()).or_insert(t);
                *slot = (*slot).max(t);
            }
            shared.last_cycle_error = cycle_error;
            shared.cycles = cycles;
            shared.report = Some(report.clone());
        }
        self.previous = Some(report);
    }
}
