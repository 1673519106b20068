//! `compliance scan`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::{Engine, EngineConfig, Gap, ProgressEvent, RunOptions, Scope, Status, Waiver};
use compliance_k8s::ManifestCollector;
use compliance_report::Report;

use crate::UsageError;
use crate::args::ScanArgs;

/// What a scan needs, built from `scan`'s flags or the monitor's `scan:` settings.
pub struct Prepared {
    /// Collectors, frameworks (with the Rego policies' controls) and waivers.
    pub engine: Engine,
    /// The checks asked for.
    pub scope: Scope,
    /// Rego policies that did not load.
    pub policy_gaps: Vec<Gap>,
    /// The waivers, to store with each run.
    pub waivers: Vec<Waiver>,
    /// The live cluster's client, when one is scanned (for remediation and watching).
    pub kube: Option<(kube::Client, String)>,
    /// The AWS configuration, when AWS is scanned (for remediation).
    pub aws: Option<aws_config::SdkConfig>,
    /// The live cluster's collector, for watching.
    pub cluster: Option<Arc<compliance_k8s::ClusterCollector>>,
}

/// Builds the engine for a scan.
pub async fn prepare(args: &ScanArgs) -> Result<Prepared, UsageError> {
    if args.k8s_manifests.is_empty() && !args.k8s_cluster && !args.aws && args.terraform.is_empty() {
        return Err(UsageError(
            "nothing to scan: give --k8s-manifests PATH, --k8s-cluster, --aws or --terraform PATH".into(),
        ));
    }
    let (policies, policy_gaps) = crate::load_policies(&args.rego_policies, args.rego_eval_limit_ms);
    let scope = scope(&args.checks, &policies.checks())?;
    let mut frameworks = select_frameworks(&args.frameworks)?;
    let is_known = crate::known_checks(&policies);
    for path in &args.framework_files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("--framework-file {name}: {e}")))?;
        let framework = compliance_report::parse_framework(&text, &name)
            .map_err(|e| UsageError(format!("--framework-file {e}")))?;
        compliance_report::check_known(&framework, &name, &is_known)
            .map_err(|e| UsageError(format!("--framework-file {e}")))?;
        frameworks.push(framework);
    }
    let mut policy_gaps = policy_gaps;
    for policy in policies.policies() {
        for (framework_id, controls) in policy.controls() {
            let Some(framework) = frameworks.iter_mut().find(|f| &f.framework.id == framework_id) else {
                continue;
            };
            for control in controls {
                if let Err(e) = framework.map_check(policy.check().id.clone(), control) {
                    policy_gaps.push(compliance_core::Gap::source(
                        policy.source(),
                        compliance_core::GapKind::Unreadable,
                        format!("METADATA controls: {e}"),
                    ));
                }
            }
        }
    }
    let frameworks: Vec<Arc<dyn compliance_core::Framework>> =
        frameworks.into_iter().map(|f| Arc::new(f) as Arc<dyn compliance_core::Framework>).collect();
    let waivers = match &args.waivers {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| UsageError(format!("--waivers {}: {e}", path.display())))?;
            Waiver::parse_list(&text, &path.display().to_string()).map_err(|e| UsageError(format!("--waivers: {e}")))?
        }
        None => Vec::new(),
    };
    let check_config = crate::check_config(policies, &args.k8s_required_labels);

    let mut engine = Engine::new()
        .with_config(EngineConfig::default().with_collector_timeout(Duration::from_secs(args.timeout.max(1))))
        .with_waivers(waivers.clone());
    for f in frameworks {
        engine = engine.with_framework(f);
    }
    if !args.k8s_manifests.is_empty() {
        engine = engine.with_collector(Arc::new(
            ManifestCollector::new(args.k8s_manifests.clone()).with_config(check_config.clone()),
        ));
    }
    if !args.terraform.is_empty() {
        engine =
            engine.with_collector(Arc::new(compliance_aws::terraform::TerraformCollector::new(args.terraform.clone())));
    }
    let mut kube = None;
    let mut cluster_collector = None;
    if args.k8s_cluster {
        let (client, cluster) = crate::remediate::kube_client(args.k8s_context.as_deref()).await?;
        let mut config = compliance_k8s::ClusterConfig::default()
            .with_cluster(cluster.clone())
            .with_namespaces(args.k8s_namespaces.clone());
        config.checks = check_config.clone();
        let collector = Arc::new(compliance_k8s::ClusterCollector::new(client.clone(), config));
        engine = engine.with_collector(collector.clone());
        cluster_collector = Some(collector);
        kube = Some((client, cluster));
    }

    let mut aws = None;
    if args.aws {
        let sdk = crate::aws::sdk_config(&args.aws_connection).await?;
        let collectors = crate::aws::collectors(
            &sdk,
            &args.aws_connection,
            &args.aws_config_rules,
            args.aws_inactive_days,
            args.aws_bucket_concurrency,
        )
        .await;
        for c in collectors {
            engine = engine.with_collector(c);
        }
        aws = Some(sdk);
    }
    Ok(Prepared { engine, scope, policy_gaps, waivers, kube, aws, cluster: cluster_collector })
}

pub async fn run(args: ScanArgs) -> Result<ExitCode, UsageError> {
    let Prepared { engine, scope, policy_gaps, .. } = prepare(&args).await?;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let quiet = args.quiet;
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if quiet {
                continue;
            }
            match event {
                ProgressEvent::CollectorStarted { collector } => eprintln!("[{collector}] collecting..."),
                ProgressEvent::CollectorFinished { collector, evidence, gaps, elapsed_ms } => {
                    eprintln!("[{collector}] {evidence} evidence, {gaps} gaps in {elapsed_ms} ms");
                }
                ProgressEvent::CollectorFailed { collector, reason } => eprintln!("[{collector}] FAILED: {reason}"),
                _ => {}
            }
        }
    });
    let mut run = engine.run_with(&scope, RunOptions::default().with_progress(tx)).await;
    run.gaps.extend(policy_gaps);
    let _ = printer.await;

    let mut report = Report::from_owned_run(run, engine.frameworks());
    if let Some(path) = &args.previous {
        let previous = Report::read_json(path).map_err(|e| UsageError(format!("--previous: {e}")))?;
        report = report.with_delta_from(&previous);
    }
    let mut formats = args.formats.clone();
    formats.dedup();
    for path in report.write_all(&formats, &args.out).map_err(|e| UsageError(e.to_string()))? {
        outln!("report: {}", path.display());
    }
    for gap in &report.gaps {
        eprintln!("gap: [{}] {}: {}", gap.collector, gap.source.as_deref().unwrap_or("(whole collector)"), gap.reason);
    }
    for expired in &report.expired_waivers {
        eprintln!(
            "waiver {} expired on {} ({} failures no longer waived)",
            expired.waiver.id, expired.waiver.expires, expired.failures_no_longer_waived
        );
    }
    if let Some(delta) = &report.delta {
        outln!("{}", delta.summary_line());
    }
    outln!("{}", report.summary_line());

    let failing = args.fail_on.severity().map_or(0, |s| report.failures_at_or_above(s));
    let unjudged = report.gaps.len() + report.evidence.iter().filter(|e| e.status == Status::Error).count();
    Ok(if failing > 0 || (args.fail_on_gaps && unjudged > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The checks asked for; a pattern that matches no check is a usage error.
pub fn scope(patterns: &[String], policy_checks: &[compliance_core::Check]) -> Result<Scope, UsageError> {
    let scope = Scope::only(patterns.iter().cloned());
    let mut checks = crate::all_checks();
    checks.extend_from_slice(policy_checks);
    for p in patterns {
        let one = Scope::only([p.clone()]);
        // AWS Config rules are discovered per account: `aws.config.*` patterns cannot be checked here.
        if !p.starts_with("aws.config.") && !checks.iter().any(|c| one.wants(&c.id)) {
            return Err(UsageError(format!("--check {p:?} matches no check; `compliance checks list` shows them")));
        }
    }
    Ok(scope)
}

fn select_frameworks(ids: &[String]) -> Result<Vec<compliance_report::MappedFramework>, UsageError> {
    let all: Vec<compliance_report::MappedFramework> =
        compliance_report::builtin_mappings().into_iter().map(|(_, f)| f).collect();
    if ids.is_empty() {
        return Ok(all);
    }
    ids.iter()
        .map(|id| {
            all.iter().find(|f| &f.framework.id == id).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|f| f.framework.id.as_str()).collect();
                UsageError(format!("unknown framework {id:?}; built in: {}", known.join(", ")))
            })
        })
        .collect()
}
