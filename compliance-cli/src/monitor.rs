//! `compliance monitor`: the configured scan on an interval, each run stored
//! (tamper-evident), compared with the previous one, alerted on change,
//! served as metrics; failures fixed by policy, or held for approval.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use compliance_core::store::{EvidenceStore, EvidenceStoreExt, Retention};
use compliance_core::{Evidence, RejectAll, Run, RunOptions, Severity};
use compliance_report::Report;
use compliance_report::notify::Notification;
use compliance_store::SqlStore;
use serde::Deserialize;
use tokio::sync::RwLock;
use tracing::{error, info, warn};

use crate::UsageError;
use crate::args::{MonitorArgs, ScanArgs};
use crate::scan::{Prepared, prepare};

/// `monitor.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// What to scan: the settings of `compliance scan`, by field name.
    #[serde(default)]
    pub scan: ScanArgs,
    /// Time between scans (`30s`, `5m`, `1h`).
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Where runs are kept: `sqlite://PATH` (embedded) or `postgres://…`.
    #[serde(default = "default_store")]
    pub store: String,
    /// Address of `/metrics` and `/healthz`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Drift notifications.
    #[serde(default)]
    pub alerts: Option<AlertConfig>,
    /// What the monitor may fix.
    #[serde(default)]
    pub remediation: RemediationConfig,
    /// How much history to keep.
    #[serde(default)]
    pub retention: Retention,
    /// With `scan.k8s_cluster`: also watch workloads and judge each change
    /// within seconds, between scans.
    #[serde(default)]
    pub watch: bool,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}

fn default_store() -> String {
    "sqlite://compliance-evidence.db".into()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

/// `250ms`, `30s`, `5m`, `1h`, `1d`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration (30s, 5m, 1h)"))?;
    let unit = match unit.trim() {
        "ms" => Duration::from_millis(1),
        "" | "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        "d" => Duration::from_secs(86_400),
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h, d)")),
    };
    unit.checked_mul(u32::try_from(n).map_err(|_| format!("{text:?} is too long"))?)
        .ok_or_else(|| format!("{text:?} is too long"))
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Text(String),
    }
    match Text::deserialize(d)? {
        Text::Seconds(s) => Ok(Duration::from_secs(s)),
        Text::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// Drift notifications to a webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Where to POST.
    pub webhook_url: String,
    /// Body form.
    #[serde(default)]
    pub format: AlertFormat,
    /// At most one notification per this interval; changes in between are
    /// grouped into the next one.
    #[serde(default = "default_min_interval", deserialize_with = "duration")]
    pub min_interval: Duration,
    /// New failures below this severity are not notified (resolutions and gaps always are).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

fn default_min_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_min_severity() -> Severity {
    Severity::Low
}

/// Webhook body forms.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    /// `{"summary", "run_id", "changes": [...]}`.
    #[default]
    Json,
    /// Slack incoming webhook: `{"text": ...}`.
    Slack,
}

/// What the monitor may do about a failing check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemediationMode {
    /// Never touch it.
    #[default]
    Never,
    /// Store a plan and wait for `compliance remediate approve`.
    Ask,
    /// Apply low-risk plans (stored first, verified after); ask for the others.
    Auto,
}

/// Per check (glob patterns), with a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationConfig {
    /// For checks no pattern matches.
    #[serde(default)]
    pub default: RemediationMode,
    /// `check pattern: never|ask|auto`; the longest matching pattern wins.
    #[serde(default)]
    pub checks: BTreeMap<String, RemediationMode>,
}

impl RemediationConfig {
    /// The mode for one check.
    pub fn mode(&self, check: &str) -> RemediationMode {
        self.checks
            .iter()
            .filter(|(pattern, _)| compliance_core::waiver::glob_match(pattern, check))
            .max_by_key(|(pattern, _)| pattern.len())
            .map_or(self.default, |(_, mode)| *mode)
    }
}

/// Reads and checks the configuration; errors name the file and field.
pub fn load_config(path: &Path) -> Result<MonitorConfig, UsageError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("{name}: {e}")))?;
    let stream = compliance_core::yaml::parse_documents(&text, &name);
    if let Some(e) = stream.error {
        return Err(UsageError(e.to_string()));
    }
    let value = stream.documents.into_iter().next().map(|d| d.value).unwrap_or_default();
    let config: MonitorConfig = serde_path_to_error::deserialize(value)
        .map_err(|e| UsageError(format!("{name}: {}: {}", e.path(), e.inner())))?;
    if let Some(key) = config.scan.unknown.keys().next() {
        return Err(UsageError(format!("{name}: scan.{key}: unknown setting")));
    }
    if config.interval < Duration::from_secs(1) {
        return Err(UsageError(format!("{name}: interval: must be at least 1s")));
    }
    Ok(config)
}

/// What `/metrics` and `/healthz` show.
#[derive(Default)]
struct Shared {
    report: Option<Report>,
    violations_total: u64,
    last_evidence: BTreeMap<String, i64>,
    last_cycle_error: Option<String>,
    cycles: u64,
}

type SharedState = Arc<RwLock<Shared>>;

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    let shared = state.read().await;
    let Some(report) = &shared.report else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no run yet".to_owned()).into_response();
    };
    match compliance_report::metrics::exposition_with_history(report, shared.violations_total, &shared.last_evidence) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(State(state): State<SharedState>) -> impl IntoResponse {
    let shared = state.read().await;
    match &shared.last_cycle_error {
        // Still serving: the error is in the body and the metrics, not a reason to restart the process.
        Some(e) => (StatusCode::OK, format!("ok (cycles: {}; last cycle: {e})", shared.cycles)),
        None => (StatusCode::OK, format!("ok (cycles: {})", shared.cycles)),
    }
}

/// Posts notifications, at most one per interval; held changes are merged.
struct Alerter {
    config: AlertConfig,
    held: Option<Notification>,
    last_sent: Option<Instant>,
}

impl Alerter {
    async fn offer(&mut self, notification: Option<Notification>) {
        if let Some(n) = notification {
            info!(target: "compliance::alert", "{}", n.summary());
            for c in &n.changes {
                info!(target: "compliance::alert", kind = ?c.kind, check = %c.check_id, severity = %c.severity, resource = %c.resource, "{}", c.message);
            }
            match &mut self.held {
                Some(held) => held.merge(n),
                None => self.held = Some(n),
            }
        }
        if self.last_sent.is_some_and(|t| t.elapsed() < self.config.min_interval) {
            return;
        }
        let Some(n) = self.held.take() else { return };
        let body = match self.config.format {
            AlertFormat::Json => n.to_json(),
            AlertFormat::Slack => n.to_slack(20),
        };
        match crate::http::post_json(&self.config.webhook_url, &body).await {
            Ok(()) => {
                self.last_sent = Some(Instant::now());
                info!("alert sent: {}", n.summary());
            }
            Err(e) => {
                warn!("alert not delivered ({e}); kept for the next cycle");
                self.held = Some(n);
            }
        }
    }
}

/// Plans fixes for the run's failures by policy: `auto` applies low-risk
/// plans, everything else fixable is stored as pending. Nothing is applied
/// without a stored plan.
async fn remediate(
    prepared: &Prepared,
    store: &dyn EvidenceStore,
    policy: &RemediationConfig,
    run_id: &str,
    failing: &[Evidence],
) {
    let wanted: Vec<(&Evidence, RemediationMode)> = failing
        .iter()
        .map(|e| (e, policy.mode(e.check_id.as_str())))
        .filter(|(_, mode)| *mode != RemediationMode::Never)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let engine =
        crate::remediate::remediation_engine(prepared.kube.as_ref().map(|(c, _)| c.clone()), prepared.aws.as_ref());
    let pending = match store.plans(Some(compliance_core::store::PlanState::Pending)).await {
        Ok(p) => p,
        Err(e) => {
            // Without the open plans a failure could be planned twice: plan nothing this time.
            error!("open plans not readable, no fix planned this cycle: {e}");
            return;
        }
    };
    for (evidence, mode) in wanted {
        // One open plan per check and resource: a failure seen again is not planned twice.
        if pending.iter().any(|p| p.plan.check_id == evidence.check_id && p.plan.resource.id == evidence.resource.id) {
            continue;
        }
        let plan = match engine.plan(evidence).await {
            Ok(Some(plan)) => plan,
            Ok(None) => continue,
            Err(e) => {
                warn!(check = %evidence.check_id, resource = %evidence.resource.id, "cannot plan a fix: {e}");
                continue;
            }
        };
        if let Err(e) = store.save_plan(&plan, Some(run_id)).await {
            error!("plan {} not stored, so not applied: {e}", plan.id);
            continue;
        }
        if mode == RemediationMode::Auto && plan.risk == compliance_core::Risk::Low {
            match crate::remediate::apply_and_record(&engine, store, &plan, &RejectAll, None).await {
                Ok((stored, outcome)) => {
                    info!(plan = %plan.id, state = stored.state.as_str(), "automatic fix: {}", outcome.message);
                }
                Err(e) => error!("outcome of plan {} not stored: {e}", plan.id),
            }
        } else {
            info!(plan = %plan.id, risk = ?plan.risk, "fix planned; waiting for `compliance remediate approve {}`", plan.id);
        }
    }
}

/// What the store knows now, as a report: the latest evidence per check and
/// resource (a watch's partial runs included), dated by the last run. The
/// first run after a restart is compared with it.
async fn previous_report(store: &dyn EvidenceStore, prepared: &Prepared) -> Option<Report> {
    let last = store.runs(None, None).await.ok()?.pop()?;
    let evidence = store.latest().await.ok()?;
    let mut run = Run::from_evidence(prepared.engine.checks(), evidence);
    if let Ok(id) = last.id.parse() {
        run.id = id;
    }
    run.finished_at = last.finished_at;
    Some(Report::from_owned_run(run, prepared.engine.frameworks()))
}

/// The next change a watch saw; never, without a watch.
async fn next_change(
    changes: &mut Option<futures::stream::BoxStream<'static, compliance_core::Collection>>,
) -> Option<compliance_core::Collection> {
    match changes {
        Some(stream) => futures::StreamExt::next(stream).await,
        None => std::future::pending().await,
    }
}

/// What every run goes through, from a scan or a watch.
struct Cycle<'a> {
    prepared: &'a Prepared,
    store: &'a SqlStore,
    state: SharedState,
    alerter: Option<Alerter>,
    remediation: RemediationConfig,
    retention: Retention,
    previous: Option<Report>,
}

impl Cycle<'_> {
    /// Stores the run, compares it with the previous report, alerts, plans
    /// fixes, prunes. A watch run covers only the objects that changed: the
    /// report it is compared as is the previous one with those evidence
    /// replaced (`base`).
    async fn process(&mut self, run: Run, base: Option<Report>, source: &str) -> (Report, Option<String>, usize) {
        let stored =
            self.store.append_run(&run, self.prepared.engine.frameworks(), &self.prepared.waivers, source).await;
        let run = match base {
            Some(base) => {
                let changed: std::collections::HashSet<(String, String)> =
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
                whole
            }
            None => run,
        };
        let mut report = Report::from_owned_run(run, self.prepared.engine.frameworks());
        if let Some(p) = &self.previous {
            report = report.with_delta_from(p);
        }
        let failing: Vec<Evidence> = report.evidence.iter().filter(|e| e.is_unwaived_failure()).cloned().collect();
        let cycle_error = match &stored {
            Ok(s) => {
                info!(run = %s.id, source, seq = s.seq, evidence = s.evidence, failures = s.failures, gaps = s.gaps, "run stored");
                None
            }
            Err(e) => {
                error!("run not stored: {e}");
                Some(format!("run not stored: {e}"))
            }
        };
        eprintln!("[{source}] {}", report.summary_line());
        if let Some(delta) = &report.delta {
            eprintln!("[{source}] {}", delta.summary_line());
        }
        if let Some(alerter) = self.alerter.as_mut() {
            alerter.offer(Notification::from_report(&report, alerter.config.min_severity)).await;
        }
        if let Ok(s) = &stored {
            remediate(self.prepared, self.store, &self.remediation, &s.id, &failing).await;
        }
        if self.retention != Retention::default() {
            match self.store.prune(&self.retention).await {
                Ok(p) if p.runs > 0 => info!(runs = p.runs, records = p.records, "history pruned"),
                Ok(_) => {}
                Err(e) => warn!("pruning failed: {e}"),
            }
        }
        let new_failures = report.delta.as_ref().map_or(failing.len(), |d| d.new_failures.len());
        (report, cycle_error, new_failures)
    }

    /// Makes a processed run what `/metrics` shows and what the next run is compared with.
    async fn publish(&mut self, (report, cycle_error, new_failures): (Report, Option<String>, usize), cycles: u64) {
        {
            let mut shared = self.state.write().await;
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

pub async fn run(args: MonitorArgs) -> Result<ExitCode, UsageError> {
    let mut config = load_config(&args.config)?;
    if let Some(store) = &args.store {
        config.store = store.clone();
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let prepared = prepare(&config.scan).await?;
    let store = SqlStore::open(&config.store).await.map_err(|e| UsageError(format!("store: {e}")))?;
    let state: SharedState = Arc::default();
    let mut previous = previous_report(&store, &prepared).await;
    if let Some(p) = &previous {
        info!(run = %p.run_id, "continuing from the last stored run");
    }

    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(healthz))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| UsageError(format!("listen {}: {e}", config.listen)))?;
    let stop = compliance_core::CancellationToken::new();
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(server_stop.cancelled_owned()).await;
    });
    eprintln!(
        "monitor: every {:?}, store {}, metrics on http://{}/metrics",
        config.interval,
        compliance_store::redact_url(&config.store),
        config.listen
    );

    let signal_stop = stop.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        signal_stop.cancel();
    });

    let alerter = config.alerts.take().map(|c| Alerter { config: c, held: None, last_sent: None });
    let mut changes = match (&prepared.cluster, config.watch) {
        (Some(cluster), true) => Some(cluster.watch(prepared.scope.clone())),
        (None, true) => {
            return Err(UsageError(format!("{}: watch: needs scan.k8s_cluster: true", args.config.display())));
        }
        _ => None,
    };
    let retention = config.retention;
    let remediation = std::mem::take(&mut config.remediation);
    let mut cycle = Cycle {
        prepared: &prepared,
        store: &store,
        state: Arc::clone(&state),
        alerter,
        remediation,
        retention,
        previous: previous.take(),
    };
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cycles = 0_u64;
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
                info!(evidence = evidence.len(), "workloads changed; judged");
                let mut run = Run::from_evidence(prepared.engine.checks(), evidence);
                run.gaps = gaps;
                let report = cycle.process(run, cycle.previous.clone(), "watch").await;
                cycle.publish(report, cycles).await;
                continue;
            }
        }
        cycles += 1;
        // A scan in progress is cancelled on shutdown: its collectors become gaps, the run is still stored.
        let mut run =
            prepared.engine.run_with(&prepared.scope, RunOptions::default().with_cancel(stop.child_token())).await;
        run.gaps.extend(prepared.policy_gaps.clone());
        let report = cycle.process(run, None, "monitor").await;
        cycle.publish(report, cycles).await;
        if args.cycles.is_some_and(|n| cycles >= n) {
            break;
        }
    }
    stop.cancel();
    let _ = server.await;
    store.pool().close().await;
    eprintln!("monitor stopped after {cycles} cycles; store flushed");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5 minutes").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_longest_matching_pattern_decides_remediation() {
        let config: RemediationConfig = serde_json::from_value(serde_json::json!({
            "default": "never",
            "checks": {"k8s.*": "ask", "k8s.container.memory_limit": "auto"}
        }))
        .unwrap_or_default();
        assert_eq!(config.mode("k8s.container.memory_limit"), RemediationMode::Auto);
        assert_eq!(config.mode("k8s.pod.run_as_non_root"), RemediationMode::Ask);
        assert_eq!(config.mode("aws.iam.user_inactive"), RemediationMode::Never);
    }

    #[test]
    fn configuration_errors_name_the_file_and_field() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("monitor.yaml");
        for (text, expected) in [
            ("scan:\n  k8s_manifest: [x]\n", "monitor.yaml: scan.k8s_manifest: unknown setting"),
            ("interval: soon\n", "monitor.yaml: interval: \"soon\" is not a duration"),
            ("alerts:\n  webhook: http://x\n", "monitor.yaml: alerts.webhook: unknown field `webhook`"),
            ("remediation:\n  default: sometimes\n", "monitor.yaml: remediation.default: unknown variant `sometimes`"),
            ("interval: 0s\n", "monitor.yaml: interval: must be at least 1s"),
        ] {
            std::fs::write(&path, text)?;
            let err = load_config(&path).err().map(|e| e.0).unwrap_or_default();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        std::fs::write(&path, "scan:\n  k8s_manifests: [deploy]\n  frameworks: [soc2]\ninterval: 10m\n")?;
        let config = load_config(&path)?;
        assert_eq!(config.interval, Duration::from_secs(600));
        assert_eq!(config.scan.frameworks, ["soc2"]);
        assert_eq!(config.scan.timeout, 300, "the scan flags' defaults apply");
        assert_eq!(config.store, "sqlite://compliance-evidence.db");
        Ok(())
    }

    #[tokio::test]
    async fn alerts_are_rate_limited_and_held_changes_are_merged_not_lost() -> Result<(), Box<dyn std::error::Error>> {
        let sink = compliance_test_support::sink::Sink::start().await?;
        let url = sink.url.clone();
        let notification = |run: &str, check: &str| {
            let change = compliance_report::notify::NotifiedChange::new(
                compliance_report::notify::ChangeKind::NewFailure,
                check,
                Severity::High,
                "r",
                "m",
            );
            Notification::new(run, chrono::Utc::now(), vec![change])
        };
        let config = AlertConfig {
            webhook_url: url,
            format: AlertFormat::Json,
            min_interval: Duration::from_millis(300),
            min_severity: Severity::Low,
        };
        let mut alerter = Alerter { config, held: None, last_sent: None };
        alerter.offer(Some(notification("r1", "a.b.one"))).await;
        alerter.offer(Some(notification("r2", "a.b.two"))).await; // within the interval: held
        assert_eq!(sink.received().len(), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        alerter.offer(None).await; // the next cycle, nothing new: the held change goes out
        let list = sink.received();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1]["run_id"], "r2");
        assert_eq!(list[1]["changes"][0]["check_id"], "a.b.two");
        Ok(())
    }
}
