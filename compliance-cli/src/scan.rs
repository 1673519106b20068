//! `compliance scan`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::{Engine, EngineConfig, Gap, RunOptions, Scope, Status, Waiver};
use compliance_report::Report;

use crate::UsageError;
use crate::args::ScanArgs;
use crate::providers;

/// What a scan needs, built from `scan`'s flags or the monitor's `scan:` settings.
pub struct Prepared {
    /// Collectors, frameworks (with the Rego policies' controls) and waivers.
    pub engine: Engine,
    /// The checks asked for.
    pub scope: Scope,
    /// Parts of the configuration that could not be set up (Rego policies that did not load).
    pub policy_gaps: Vec<Gap>,
    /// The remediators of the providers scanned live.
    pub remediators: Engine,
    /// The live sources to follow, for the monitor's watch.
    pub watchers: Vec<Arc<dyn compliance_core::provider::Watcher>>,
}

/// Builds the engine for a scan: the providers through the registry, then
/// frameworks and waivers.
pub async fn prepare(args: &ScanArgs) -> Result<Prepared, UsageError> {
    if args.k8s_manifests.is_empty() && !args.k8s_cluster && !args.aws && args.terraform.is_empty() {
        return Err(UsageError(
            "nothing to scan: give --k8s-manifests PATH, --k8s-cluster, --aws or --terraform PATH".into(),
        ));
    }
    // A shard splits fleets; elsewhere every shard would do the same work, and store it N times.
    if args.shard.is_some_and(|s| s.count > 1) {
        let aws_fleet = providers::aws_section(args).is_some_and(|aws| aws.account && aws.is_fleet());
        let clusters = args.k8s_all_contexts || args.k8s_context.len() > 1;
        if !aws_fleet && !clusters {
            return Err(UsageError(
                "--shard splits fleets: give --aws-organization, --aws-accounts or several --aws-regions, or several kube contexts".into(),
            ));
        }
        if !args.k8s_manifests.is_empty() || !args.terraform.is_empty() {
            return Err(UsageError(
                "--shard: manifests and Terraform are not split; scan them in one run without --shard".into(),
            ));
        }
    }
    let sections = providers::sections(providers::k8s_section(args), providers::aws_section(args))?;
    let wiring = providers::build(&sections).await?;
    let scope = scope(&args.checks, &wiring.checks)?;
    let mut frameworks = select_frameworks(&args.frameworks)?;
    let is_known = known_checks(&wiring.checks);
    for path in &args.framework_files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("--framework-file {name}: {e}")))?;
        let framework = compliance_report::parse_framework(&text, &name)
            .map_err(|e| UsageError(format!("--framework-file {e}")))?;
        compliance_report::check_known(&framework, &name, &is_known)
            .map_err(|e| UsageError(format!("--framework-file {e}")))?;
        frameworks.push(framework);
    }
    let mut policy_gaps = wiring.gaps;
    policy_gaps.extend(compliance_report::apply_mappings(&mut frameworks, &wiring.mappings));
    let waivers = match &args.waivers {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| UsageError(format!("--waivers {}: {e}", path.display())))?;
            Waiver::parse_list(&text, &path.display().to_string()).map_err(|e| UsageError(format!("--waivers: {e}")))?
        }
        None => Vec::new(),
    };
    let mut engine = Engine::new()
        .with_config(EngineConfig::default().with_collector_timeout(Duration::from_secs(args.timeout.max(1))))
        .with_waivers(waivers);
    for f in frameworks {
        engine = engine.with_framework(Arc::new(f));
    }
    for c in wiring.collectors {
        engine = engine.with_collector(c);
    }
    let mut remediators = Engine::new();
    for r in wiring.remediators {
        remediators = remediators.with_remediator(r);
    }
    Ok(Prepared { engine, scope, policy_gaps, remediators, watchers: wiring.watchers })
}

pub async fn run(args: ScanArgs) -> Result<ExitCode, UsageError> {
    // The key first: a typo in its path should not cost a scan.
    let sign_key = args.sign_key.as_deref().map(crate::attest::signing_key).transpose()?;
    let Prepared { engine, scope, policy_gaps, .. } = prepare(&args).await?;

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(crate::progress::show(rx, args.quiet));
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
    let paths = report.write_all(&formats, &args.out).map_err(|e| UsageError(e.to_string()))?;
    for path in &paths {
        outln!("report: {}", path.display());
    }
    if let Some(key) = &sign_key {
        let envelope = crate::attest::sign_report(&paths, &report.run_id.to_string(), key)?;
        outln!("signed: {} (key {})", envelope.display(), key.fingerprint());
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

/// The checks asked for; a pattern that matches no check of any provider
/// (or of the configured policies) is a usage error.
pub fn scope(patterns: &[String], configured: &[compliance_core::Check]) -> Result<Scope, UsageError> {
    let registry = compliance_rs::registry();
    let mut checks = registry.checks();
    checks.extend_from_slice(configured);
    for p in patterns {
        let one = Scope::only([p.clone()]);
        // Ids discovered at run time (AWS Config rules) have no catalogue entry: ask the providers.
        let discovered = p.replace('*', "x").parse::<compliance_core::CheckId>().is_ok_and(|id| registry.knows(&id));
        if !discovered && !checks.iter().any(|c| one.wants(&c.id)) {
            return Err(UsageError(format!("--check {p:?} matches no check; `compliance checks list` shows them")));
        }
    }
    Ok(Scope::only(patterns.iter().cloned()))
}

/// A test for the checks this binary can produce: a provider's (built in,
/// or discovered at run time such as AWS Config rules), or a configured one.
pub fn known_checks(configured: &[compliance_core::Check]) -> impl Fn(&compliance_core::CheckId) -> bool + use<> {
    let registry = compliance_rs::registry();
    let configured: std::collections::HashSet<compliance_core::CheckId> =
        configured.iter().map(|c| c.id.clone()).collect();
    move |id| configured.contains(id) || registry.knows(id)
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
