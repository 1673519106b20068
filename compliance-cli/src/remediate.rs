//! `compliance remediate`: plans by default, applies with `--apply`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use compliance_core::{ApproveAll, Approver, Evidence, Mode, RejectAll, Scope, Status};
use compliance_k8s::{FixDefaults, fix_manifest};
use compliance_monitor::apply_and_record;
use compliance_report::Report;
use serde_json::json;

use crate::UsageError;
use crate::args::{ListFormat, PlanStateArg, RemediateArgs, StoredPlanCommand};
use crate::providers;
use compliance_core::store::{PlanState, StoredPlan};
use compliance_core::{EvidenceStore, EvidenceStoreExt};

fn print_changes(changes: &[compliance_core::Change]) {
    let mut operation = "";
    for c in changes {
        if c.operation != operation {
            operation = &c.operation;
            outln!("    {operation}");
        }
        outln!("      {}: {} -> {}", c.target, c.before, c.after);
    }
}

/// Where the fixed copy of `input` goes: the input itself (`--in-place`),
/// `NAME.fixed.yaml` beside it, or under `--manifest-out` at the input's own
/// relative path (so `a/app.yaml` and `b/app.yaml` stay apart). An input
/// outside the working directory keeps its absolute path under the folder;
/// `..` never leads out of it.
fn fixed_path(input: &Path, out_dir: Option<&Path>, in_place: bool) -> PathBuf {
    use std::path::Component;
    if in_place {
        return input.to_path_buf();
    }
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("manifest");
    let name = format!("{stem}.fixed.yaml");
    let Some(dir) = out_dir else {
        return input.with_file_name(name);
    };
    let absolute = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
    let cwd = std::env::current_dir().unwrap_or_default();
    let relative = absolute.strip_prefix(&cwd).unwrap_or(&absolute);
    let mut target = dir.to_path_buf();
    if let Some(parent) = relative.parent() {
        for part in parent.components() {
            match part {
                Component::Normal(p) => target.push(p),
                // `..` stays inside the folder, under a name of its own.
                Component::ParentDir => target.push("__parent__"),
                Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            }
        }
    }
    target.join(name)
}

/// Writes `text` to `target` without following a link there and without
/// leaving a partial file: a new temporary file beside it (create-new,
/// no-follow), with the mode of `source` (a Secret's 0600 stays 0600), then
/// renamed over `target` (a link at `target` is replaced, never followed).
fn write_fixed(target: &Path, text: &str, source: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(source).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("manifest");
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(&temporary)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::set_permissions(&temporary, std::os::unix::fs::PermissionsExt::from_mode(mode)))
        .and_then(|()| std::fs::rename(&temporary, target));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

pub async fn run(args: RemediateArgs) -> Result<ExitCode, UsageError> {
    if let Some(command) = args.stored {
        return stored(command).await;
    }
    let Some(report_path) = args.report.clone() else {
        return Err(UsageError(
            "give --report FILE, or list|show|approve|reject for the plans the monitor stored".into(),
        ));
    };
    let report = Report::read_json(&report_path).map_err(|e| UsageError(format!("--report: {e}")))?;
    let scope = Scope::only(args.checks.iter().cloned());
    let mode = if args.apply { Mode::Apply } else { Mode::DryRun };
    let defaults = FixDefaults::default()
        .with_run_as_user(args.run_as_user)
        .with_fs_group(args.fs_group)
        .with_memory_limit(args.memory_limit.clone())
        .with_cpu_limit(args.cpu_limit.clone());
    let failing: Vec<&Evidence> = report
        .evidence
        .iter()
        .filter(|e| e.status == Status::Fail && e.waiver.is_none() && scope.wants(&e.check_id))
        .collect();
    let user = std::env::var("USER").unwrap_or_else(|_| "cli-user".into());
    let approver: Box<dyn Approver> = if args.yes { Box::new(ApproveAll { by: user }) } else { Box::new(RejectAll) };
    let mut record = json!({ "generated_at": chrono::Utc::now(), "report": report_path.display().to_string(), "mode": mode, "manifests": [], "live": [] });
    let mut problems = 0_usize;

    // Manifests: every failing check of a file is fixed in one new copy.
    let mut by_file: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in failing.iter().filter(|e| e.resource.provider == "k8s" && e.resource.cluster.is_none()) {
        if let Some(file) = e.resource.file.as_deref() {
            by_file.entry(file).or_default().push(e.check_id.to_string());
        }
    }
    // Two inputs must never be written to one file.
    let mut targets: BTreeMap<PathBuf, &str> = BTreeMap::new();
    for (file, checks) in &by_file {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                problems += 1;
                continue;
            }
        };
        let fix = match fix_manifest(&text, file, &Scope::only(checks.iter().cloned()), &defaults) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                problems += 1;
                continue;
            }
        };
        if fix.changes.is_empty() {
            continue;
        }
        let target = fixed_path(Path::new(file), args.manifest_out.as_deref(), args.in_place);
        if let Some(other) = targets.insert(target.clone(), file) {
            eprintln!("{file}: its fixed copy {} would replace that of {other}; not written", target.display());
            problems += 1;
            continue;
        }
        outln!("{file} -> {}", target.display());
        for (object, changes) in &fix.changes {
            outln!("  {object}");
            print_changes(changes);
        }
        for (object, check) in &fix.still_failing {
            outln!("  still failing after the fix: {check} on {object}");
            problems += 1;
        }
        if mode == Mode::Apply {
            write_fixed(&target, &fix.text, Path::new(file))
                .map_err(|e| UsageError(format!("{}: {e}", target.display())))?;
            outln!("  written and read back (re-checked: {} objects fixed)", fix.changes.len());
        }
        if let Some(list) = record["manifests"].as_array_mut() {
            list.push(json!({ "input": file, "output": target.display().to_string(), "written": mode == Mode::Apply,
                "changes": fix.changes, "still_failing": fix.still_failing }));
        }
    }

    // Live objects and cloud resources: through the engine, so high-risk
    // plans need approval. Evidence that names a file (Terraform) is code,
    // not a live resource: it is never fixed through an API.
    let live: Vec<&Evidence> = failing
        .iter()
        .copied()
        .filter(|e| e.resource.cluster.is_some() || (e.resource.provider == "aws" && e.resource.file.is_none()))
        .collect();
    if !live.is_empty() {
        let kube = live.iter().any(|e| e.resource.cluster.is_some()).then(|| args.k8s_context.clone());
        let aws = live.iter().any(|e| e.resource.provider == "aws").then(|| {
            let mut aws = providers::aws_connection(&args.aws_connection);
            aws.kms_key_id = args.aws_kms_key.clone();
            aws
        });
        let engine = providers::remediators(kube, aws, defaults.clone()).await?;
        for e in live {
            let entry = match engine.plan(e).await {
                Ok(None) => continue,
                Ok(Some(plan)) => {
                    outln!("{} on {} [{:?} risk]: {}", plan.check_id, plan.resource.id, plan.risk, plan.summary);
                    print_changes(&plan.changes);
                    match engine.apply(&plan, mode, approver.as_ref()).await {
                        Ok(outcome) => {
                            outln!("  {}", outcome.message);
                            json!({ "plan": plan, "outcome": outcome })
                        }
                        Err(err) => {
                            problems += 1;
                            let hint = if matches!(err, compliance_core::Error::NotApproved { .. }) {
                                " (review the plan, then rerun with --apply --yes)"
                            } else {
                                ""
                            };
                            outln!("  not applied: {err}{hint}");
                            json!({ "plan": plan, "error": err.to_string() })
                        }
                    }
                }
                Err(err) => {
                    problems += 1;
                    outln!("{} on {}: cannot plan: {err}", e.check_id, e.resource.id);
                    json!({ "evidence": e.resource.id, "check": e.check_id, "error": err.to_string() })
                }
            };
            if let Some(list) = record["live"].as_array_mut() {
                list.push(entry);
            }
        }
    }

    let count = |key: &str| record[key].as_array().map_or(0, Vec::len);
    if count("manifests") + count("live") == 0 {
        outln!("nothing to remediate: no fixable failure in {}", report_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let name = format!("compliance_remediation_{}.json", chrono::Utc::now().format("%Y%m%d_%H%M%S"));
    let text = serde_json::to_vec_pretty(&record).map_err(|e| UsageError(e.to_string()))?;
    let path = compliance_report::write_new(&args.out, &name, &text).map_err(|e| UsageError(e.to_string()))?;
    outln!("record: {}", path.display());
    if mode == Mode::DryRun {
        outln!("dry run: nothing was changed; rerun with --apply to make these changes");
    }
    Ok(if problems > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_plan(p: &StoredPlan) {
    outln!(
        "{}  {:<9} {:?} risk  {} on {}",
        p.plan.id,
        p.state.as_str(),
        p.plan.risk,
        p.plan.check_id,
        p.plan.resource.id
    );
}

fn state_of(arg: PlanStateArg) -> PlanState {
    match arg {
        PlanStateArg::Pending => PlanState::Pending,
        PlanStateArg::Approved => PlanState::Approved,
        PlanStateArg::Rejected => PlanState::Rejected,
        PlanStateArg::Applied => PlanState::Applied,
        PlanStateArg::Failed => PlanState::Failed,
    }
}

async fn stored(command: StoredPlanCommand) -> Result<ExitCode, UsageError> {
    let query = |e: compliance_core::StoreError| UsageError(e.to_string());
    match command {
        StoredPlanCommand::List { store, state } => {
            let plans = crate::evidence::open(&store.store).await?.plans(state.map(state_of)).await.map_err(query)?;
            match store.format {
                ListFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&plans).map_err(|e| UsageError(e.to_string()))?)
                }
                ListFormat::Text => {
                    plans.iter().for_each(print_plan);
                    outln!("{} plans", plans.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StoredPlanCommand::Show { store, id } => {
            let plan = crate::evidence::open(&store.store)
                .await?
                .plan(&id)
                .await
                .map_err(query)?
                .ok_or_else(|| UsageError(format!("no remediation plan {id}")))?;
            match store.format {
                ListFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&plan).map_err(|e| UsageError(e.to_string()))?)
                }
                ListFormat::Text => {
                    print_plan(&plan);
                    outln!("  {}", plan.plan.summary);
                    print_changes(&plan.plan.changes);
                    if let Some(d) = &plan.decision {
                        let verb = if d.approved { "approved" } else { "rejected" };
                        outln!("  {verb} by {} at {} {}", d.by, d.at.to_rfc3339(), d.reason);
                    }
                    if let Some(o) = &plan.outcome {
                        outln!("  outcome: {}", o.message);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StoredPlanCommand::Reject(args) => {
            let by = args.by.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "cli-user".into()));
            let store = crate::evidence::open_existing(&args.store.store).await?;
            let plan = store.decide(&args.id, false, &by, &args.reason).await.map_err(query)?;
            print_plan(&plan);
            outln!("rejected by {by}; nothing was changed");
            Ok(ExitCode::SUCCESS)
        }
        StoredPlanCommand::Approve(args) => {
            let by = args.by.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "cli-user".into()));
            let store = crate::evidence::open_existing(&args.store.store).await?;
            let pending = store
                .plan(&args.id)
                .await
                .map_err(query)?
                .ok_or_else(|| UsageError(format!("no remediation plan {}", args.id)))?;
            if pending.state != PlanState::Pending {
                return Err(UsageError(format!(
                    "plan {} is {}: only pending plans can be approved",
                    args.id,
                    pending.state.as_str()
                )));
            }
            // The remediator for the plan's resource, before anything is recorded.
            let resource = &pending.plan.resource;
            let kube = resource.cluster.is_some().then(|| args.k8s_context.clone());
            let aws = (resource.provider == "aws").then(|| providers::aws_connection(&args.aws_connection));
            let engine = providers::remediators(kube, aws, FixDefaults::default()).await?;
            // What would be sent now must be what was planned and shown.
            if let Err(why) = compliance_monitor::plan_still_holds(&engine, &pending.plan).await {
                outln!("not approved: {why}");
                return Ok(ExitCode::from(1));
            }
            let approved = store.decide(&args.id, true, &by, &args.reason).await.map_err(query)?;
            outln!("approved by {by}; applying");
            let approver = ApproveAll { by: by.clone() };
            let approval = compliance_core::Approval::new(true, by, args.reason.clone());
            let (stored, outcome) =
                apply_and_record(&engine, &store, &approved.plan, &approver, Some(approval)).await.map_err(query)?;
            print_plan(&stored);
            outln!("  {}", outcome.message);
            if let Some(v) = &outcome.verification {
                outln!("  re-checked: {} {}", v.check_id, v.status.as_str());
            }
            Ok(if stored.state == PlanState::Applied { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
