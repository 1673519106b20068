//! `compliance`: the reference command line of compliance-rs.
//!
//! Wiring only: flags become provider configuration sections
//! (`providers.rs`), `compliance_rs::registry()` builds the providers, and
//! the engine, the report, the store and the monitor do the rest. Exit codes: 0 when nothing at or above `--fail-on`
//! fails, 1 when something does, 2 on a usage or configuration error.

/// `println!` that ignores a closed stdout (`compliance checks list | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod args;
mod attest;
mod evidence;
mod monitor;
mod progress;
mod providers;
mod remediate;
mod scan;
mod webhook;

use std::process::ExitCode;

use clap::Parser;

use args::{ChecksCommand, Cli, Command, FrameworksCommand, ListFormat, MonitoringCommand};

/// mimalloc instead of the system allocator: a scan makes millions of
/// small allocations from several threads, and glibc's allocator with its
/// page faults took about a quarter of the samples of a 10,000-workload
/// scan under `perf record`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A usage or configuration error: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::error::Error for UsageError {}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Scan(args) => runtime.block_on(scan::run(*args)),
        Command::Checks { command: ChecksCommand::List { format } } => list_checks(format),
        Command::Frameworks { command } => list_frameworks(command),
        Command::Remediate(args) => runtime.block_on(remediate::run(*args)),
        Command::Webhook(args) => runtime.block_on(webhook::run(args)),
        Command::Monitor(args) => runtime.block_on(monitor::run(args)),
        Command::Evidence { command } => runtime.block_on(evidence::run(command)),
        Command::Keys { command } => attest::keys(command),
        Command::Report { command } => attest::report(command),
        Command::Monitoring { command } => {
            match command {
                MonitoringCommand::AlertRules => outln!("{}", compliance_report::metrics::alert_rules().trim_end()),
                MonitoringCommand::GrafanaDashboard => {
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&compliance_report::metrics::grafana_dashboard())
                            .unwrap_or_default()
                    )
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    // A blocking read that never returns (a device or pipe a check reached
    // despite the file walk's guard) must not keep the process alive once
    // the report is written: the runtime waits a few seconds, then goes.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMPLIANCE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Completes on SIGTERM or Ctrl-C: how services stop gracefully.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

fn list_checks(format: ListFormat) -> Result<ExitCode, UsageError> {
    let checks = compliance_rs::registry().checks();
    match format {
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&checks).map_err(|e| UsageError(e.to_string()))?;
            outln!("{text}");
        }
        ListFormat::Text => {
            let width = checks.iter().map(|c| c.id.as_str().len()).max().unwrap_or(8);
            outln!("{:width$}  {:8}  TITLE", "CHECK", "SEVERITY");
            for c in &checks {
                let fix = if c.remediable { "  [fixable]" } else { "" };
                outln!("{:width$}  {:8}  {}{fix}", c.id.as_str(), c.severity.as_str(), c.title);
            }
            outln!("{} checks", checks.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The coverage summary: per framework, controls by what feeds them.
fn coverage_table(frameworks: &[std::sync::Arc<dyn compliance_core::Framework>]) -> String {
    // The AWS Config rules in the built-in frameworks are exactly those the rules mapping adds.
    let mapped: std::collections::HashSet<compliance_core::CheckId> =
        compliance_report::aws_config_rules().unwrap_or_default().into_iter().map(|r| r.check).collect();
    let config_rule = |c: &compliance_core::CheckId| mapped.contains(c);
    let mut out = String::from(
        "| framework | controls | with a native check | AWS Config rules only | native checks | AWS Config rules |\n|---|---:|---:|---:|---:|---:|",
    );
    for f in frameworks {
        let controls = f.controls();
        let native = controls.iter().filter(|c| c.checks.iter().any(|k| !config_rule(k))).count();
        let mut native_checks = std::collections::BTreeSet::new();
        let mut rules = std::collections::BTreeSet::new();
        for c in controls {
            for k in &c.checks {
                if config_rule(k) {
                    rules.insert(k)
                } else {
                    native_checks.insert(k)
                };
            }
        }
        out.push_str(&format!(
            "\n| {} | {} | {} | {} | {} | {} |",
            f.name(),
            controls.len(),
            native,
            controls.len() - native,
            native_checks.len(),
            rules.len()
        ));
    }
    out
}

fn list_frameworks(command: FrameworksCommand) -> Result<ExitCode, UsageError> {
    let frameworks = compliance_report::builtin_frameworks();
    match command {
        FrameworksCommand::List => {
            for f in &frameworks {
                outln!("{:10}  {}  ({} controls, version {})", f.id(), f.name(), f.controls().len(), f.version());
            }
        }
        FrameworksCommand::Coverage => outln!("{}", coverage_table(&frameworks)),
        FrameworksCommand::Show { id } => {
            let f = frameworks.iter().find(|f| f.id() == id).ok_or_else(|| {
                UsageError(format!("unknown framework {id:?}; `compliance frameworks list` shows the ids"))
            })?;
            outln!("{} ({}, version {})", f.name(), f.id(), f.version());
            for c in f.controls() {
                let checks: Vec<&str> = c.checks.iter().map(|c| c.as_str()).collect();
                outln!("  {:10}  {}\n              checks: {}", c.id, c.title, checks.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
