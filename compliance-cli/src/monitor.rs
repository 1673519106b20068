//! `compliance monitor`: the configured scan on an interval, each run stored
//! (tamper-evident), compared with the previous one, alerted on change,
//! served as metrics; failures fixed by policy, or held for approval. The
//! loop is `compliance_monitor::Monitor`; this file reads the configuration
//! and wires it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::store::Retention;
use compliance_monitor::{AlertConfig, CheckpointSigning, Monitor, MonitorSettings, RemediationConfig, ReportSink};
use compliance_report::PolicyReportApi;
use compliance_store::SqlStore;
use serde::Deserialize;
use tracing::info;

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
    #[serde(default = "default_interval", deserialize_with = "compliance_monitor::duration")]
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
    /// Write each run's results into the cluster as policy reports (server-side
    /// apply), for Policy Reporter and other readers; stale ones are removed.
    #[serde(default)]
    pub policy_reports: bool,
    /// Which policy report API: `wgpolicyk8s.io` (PolicyReport, the default)
    /// or `openreports.io` (Report).
    #[serde(default)]
    pub policy_report_api: PolicyReportApiName,
    /// Sign the chain's head after every run (a checkpoint), and copy each
    /// checkpoint outside the database.
    #[serde(default)]
    pub signing: Option<SigningConfig>,
}

/// `signing` in monitor.yaml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// Append each checkpoint to this file too (JSON Lines).
    #[serde(default)]
    pub checkpoints_file: Option<PathBuf>,
    /// POST each checkpoint (JSON) to this URL too.
    #[serde(default)]
    pub checkpoints_url: Option<String>,
}

/// `policy_report_api` in monitor.yaml.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum PolicyReportApiName {
    /// `wgpolicyk8s.io/v1alpha2`.
    #[default]
    #[serde(rename = "wgpolicyk8s.io")]
    WgPolicy,
    /// `openreports.io/v1alpha1`.
    #[serde(rename = "openreports.io")]
    OpenReports,
}

/// Publishes each run as policy reports into the monitored cluster.
struct PolicyReportSink {
    publisher: compliance_k8s::ReportPublisher,
    api: PolicyReportApi,
}

#[async_trait::async_trait]
impl ReportSink for PolicyReportSink {
    fn name(&self) -> &str {
        "policy-reports"
    }

    async fn publish(&self, source: &str, report: &compliance_report::Report) -> Result<String, String> {
        // Watch runs come with every workload change: the scheduled scan
        // publishes the whole picture instead of hammering the API server.
        if source != "monitor" {
            return Ok(format!("{source} run: reports are published after scheduled scans"));
        }
        // Only what was read from the cluster (manifests scanned beside it
        // would name namespaces the cluster may not have).
        let mut from_cluster = report.clone();
        from_cluster.evidence.retain(|e| e.resource.provider == "k8s" && e.resource.cluster.is_some());
        let objects = compliance_report::policy_reports(&from_cluster, self.api);
        // A namespace the scan could not read keeps its last report.
        let complete = !report.gaps.iter().any(|g| g.source.as_deref().is_some_and(|s| s.starts_with("k8s")));
        let done = self.publisher.publish(&objects, complete).await.map_err(|e| e.to_string())?;
        let kept = if complete { "" } else { " (stale ones kept: the scan had gaps)" };
        Ok(format!("{} {} reports applied, {} stale removed{kept}", done.applied, self.api.kind(), done.deleted))
    }
}

fn default_interval() -> Duration {
    MonitorSettings::default().interval
}

fn default_store() -> String {
    "sqlite://compliance-evidence.db".into()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl MonitorConfig {
    fn settings(&self) -> MonitorSettings {
        let mut settings =
            MonitorSettings::default().with_interval(self.interval).with_remediation(self.remediation.clone());
        settings.alerts = self.alerts.clone();
        settings.retention = self.retention;
        settings.watch = self.watch;
        settings
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

pub async fn run(args: MonitorArgs) -> Result<ExitCode, UsageError> {
    let mut config = load_config(&args.config)?;
    if let Some(store) = &args.store {
        config.store = store.clone();
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.shard.is_some() {
        config.scan.shard = args.shard;
    }
    if config.watch && !config.scan.k8s_cluster {
        return Err(UsageError(format!("{}: watch: needs scan.k8s_cluster: true", args.config.display())));
    }
    if config.policy_reports && !config.scan.k8s_cluster {
        return Err(UsageError(format!("{}: policy_reports: needs scan.k8s_cluster: true", args.config.display())));
    }
    // The key first: a wrong path should not wait for a scan.
    let signing = match &config.signing {
        Some(s) => {
            let key = compliance_attest::SigningKey::read(&s.key)
                .map_err(|e| UsageError(format!("{}: signing.key: {e}", args.config.display())))?;
            eprintln!("monitor: signing checkpoints with key {}", key.fingerprint());
            let mut signing = CheckpointSigning::new(key);
            if let Some(file) = &s.checkpoints_file {
                signing = signing.with_file(file);
            }
            if let Some(url) = &s.checkpoints_url {
                signing = signing.with_url(url.clone());
            }
            Some(signing)
        }
        None => None,
    };
    let Prepared { engine, scope, policy_gaps, remediators, watchers } = prepare(&config.scan).await?;
    let store = Arc::new(SqlStore::open(&config.store).await.map_err(|e| UsageError(format!("store: {e}")))?);
    let mut monitor = Monitor::new(engine, store.clone(), config.settings())
        .with_scope(scope)
        .with_remediators(remediators)
        .with_watchers(watchers)
        .with_standing_gaps(policy_gaps)
        .on_run(|source, report| {
            eprintln!("[{source}] {}", report.summary_line());
            if let Some(delta) = &report.delta {
                eprintln!("[{source}] {}", delta.summary_line());
            }
        });
    if let Some(signing) = signing {
        monitor = monitor.with_checkpoints(signing);
    }
    if config.policy_reports {
        // Policy reports go to one cluster: the monitor's own (one context at most).
        if config.scan.k8s_context.len() > 1 || config.scan.k8s_all_contexts {
            return Err(UsageError(
                "policy_reports: publishing to several clusters is not supported; give one k8s_context".into(),
            ));
        }
        let (client, _) = compliance_k8s::kube_client(config.scan.k8s_context.first().map(String::as_str))
            .await
            .map_err(|e| UsageError(format!("policy_reports: {e}")))?;
        let api = match config.policy_report_api {
            PolicyReportApiName::WgPolicy => PolicyReportApi::WgPolicy,
            PolicyReportApiName::OpenReports => PolicyReportApi::OpenReports,
        };
        let publisher = compliance_k8s::ReportPublisher::new(client, api.api_version(), api.kind(), api.cluster_kind());
        monitor = monitor.with_sink(Arc::new(PolicyReportSink { publisher, api }));
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| UsageError(format!("listen {}: {e}", config.listen)))?;
    let stop = compliance_core::CancellationToken::new();
    let server_stop = stop.clone();
    let app = monitor.router();
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
    let cycles = monitor.run(stop.clone(), args.cycles).await;
    stop.cancel();
    let _ = server.await;
    store.pool().close().await;
    info!(cycles, "monitor stopped");
    eprintln!("monitor stopped after {cycles} cycles; store flushed");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
