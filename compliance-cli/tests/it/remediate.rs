//! `compliance remediate` of manifests and of a live cluster: dry run, approval, apply.

use std::path::PathBuf;

use crate::support::{TestResult, cluster_with_web, compliance, compliance_with, repo, report_in, text};

#[test]
fn remediate_manifests_dry_run_then_apply_to_new_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("worker.yaml");
    std::fs::copy(repo().join("examples/manifests/legacy-worker.yaml"), &input)?;
    let original = std::fs::read_to_string(&input)?;
    let reports = dir.path().join("reports");
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        input.to_str().ok_or("path")?,
        "--out",
        reports.to_str().ok_or("path")?,
    ]);
    assert!(out.status.success());
    let report = std::fs::read_dir(&reports)?.filter_map(|e| e.ok()).map(|e| e.path()).next().ok_or("no report")?;
    let report = report.to_str().ok_or("path")?;

    let out = compliance(&["remediate", "--report", report, "--out", reports.to_str().ok_or("path")?]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("spec.template.spec.securityContext.runAsNonRoot: null -> true"), "{stdout}");
    assert!(stdout.contains("dry run: nothing was changed"));
    assert!(!dir.path().join("worker.fixed.yaml").exists(), "dry run writes no manifest");
    assert_eq!(std::fs::read_to_string(&input)?, original);

    let out = compliance(&[
        "remediate",
        "--report",
        report,
        "--apply",
        "--memory-limit",
        "1Gi",
        "--out",
        reports.to_str().ok_or("path")?,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let fixed = dir.path().join("worker.fixed.yaml");
    assert!(fixed.exists());
    assert!(std::fs::read_to_string(&fixed)?.contains("memory: 1Gi"), "configured values are used");
    assert_eq!(std::fs::read_to_string(&input)?, original, "the input is never overwritten without --in-place");
    let rescan = dir.path().join("rescan");
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        fixed.to_str().ok_or("path")?,
        "--out",
        rescan.to_str().ok_or("path")?,
        "--check",
        "k8s.pod.run_as_non_root",
        "--check",
        "k8s.container.*_limit",
        "--check",
        "k8s.container.privilege_escalation",
        "--fail-on",
        "info",
    ]);
    assert_eq!(out.status.code(), Some(0), "fixed copy passes: {}", text(&out.stdout));
    let records: Vec<PathBuf> = std::fs::read_dir(&reports)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("compliance_remediation_"))
        .collect();
    assert!(!records.is_empty(), "every remediation is recorded");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_cluster_scan_and_remediation_through_kubeconfig() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (server, kubeconfig) = cluster_with_web(dir.path()).await?;
    let reports = dir.path().join("reports");
    let reports_arg = reports.to_str().ok_or("path")?.to_owned();
    let run = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            compliance_with(&args, &[("KUBECONFIG", kubeconfig.to_str().unwrap_or_default())])
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();

    let out = run(args(&[
        "scan",
        "--k8s-cluster",
        "--check",
        "k8s.container.memory_limit",
        "--check",
        "k8s.pod.run_as_non_root",
        "--out",
        &reports_arg,
    ]))
    .await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = report_in(&reports)?;
    let ids: Vec<&str> =
        report["evidence"].as_array().ok_or("evidence")?.iter().filter_map(|e| e["resource"]["id"].as_str()).collect();
    assert_eq!(ids, ["staging/shop/Deployment/web", "staging/shop/Deployment/web"]);
    let report_path =
        std::fs::read_dir(&reports)?.filter_map(|e| e.ok()).map(|e| e.path()).next().ok_or("no report")?;
    let report_arg = report_path.to_str().ok_or("path")?.to_owned();

    // Dry run: the API server sees dryRun=All; nothing stored changes.
    let out = run(args(&["remediate", "--report", &report_arg, "--out", &reports_arg])).await?;
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        server
            .api
            .seen()
            .iter()
            .any(|s| s.method == "PATCH" && s.query.get("dryRun").map(String::as_str) == Some("All"))
    );
    let stored = server.api.get("deployments", "shop", "web").ok_or("gone")?;
    assert!(stored["spec"]["template"]["spec"]["containers"][0]["resources"].is_null());

    // Apply without approval: the high-risk plan (run as non-root) is refused, the medium one applied.
    let out = run(args(&["remediate", "--report", &report_arg, "--apply", "--out", &reports_arg])).await?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("not applied: plan"), "{}", text(&out.stdout));
    let stored = server.api.get("deployments", "shop", "web").ok_or("gone")?;
    assert_eq!(stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"], "512Mi");
    assert!(stored["spec"]["template"]["spec"]["securityContext"].is_null());

    // With --yes, the reviewed high-risk plan is applied and verified.
    let out = run(args(&[
        "remediate",
        "--report",
        &report_arg,
        "--apply",
        "--yes",
        "--check",
        "k8s.pod.run_as_non_root",
        "--out",
        &reports_arg,
    ]))
    .await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("k8s.pod.run_as_non_root is now pass"), "{}", text(&out.stdout));
    let stored = server.api.get("deployments", "shop", "web").ok_or("gone")?;
    assert_eq!(stored["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], true);
    Ok(())
}

/// A bucket that exists only in Terraform is not fixed through the S3 API:
/// its evidence names a file.
#[test]
fn terraform_findings_are_never_remediated_through_aws() -> TestResult {
    let out_dir = tempfile::tempdir()?;
    let out_path = out_dir.path().to_str().ok_or("path")?;
    let scan = compliance(&["scan", "--terraform", "examples/terraform", "--out", out_path, "--quiet"]);
    assert_eq!(scan.status.code(), Some(0), "{}", text(&scan.stderr));
    let report = std::fs::read_dir(out_dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .ok_or("no report")?;
    let out = compliance(&["remediate", "--report", report.to_str().ok_or("path")?, "--out", out_path]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("nothing to remediate"), "{}", text(&out.stdout));
    Ok(())
}

#[test]
fn fixed_copies_keep_relative_paths_never_follow_links_and_keep_the_source_mode() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let worker = std::fs::read_to_string(repo().join("examples/manifests/legacy-worker.yaml"))?;
    // Two inputs with the same file name, one of them private (0600).
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(sub))?;
        std::fs::write(dir.path().join(sub).join("app.yaml"), &worker)?;
    }
    std::fs::set_permissions(dir.path().join("b/app.yaml"), std::fs::Permissions::from_mode(0o600))?;
    // A link where b's fixed copy goes, pointing at a file that must not change.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me")?;
    std::fs::create_dir_all(dir.path().join("fixed/b"))?;
    std::os::unix::fs::symlink(&victim, dir.path().join("fixed/b/app.fixed.yaml"))?;

    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_compliance"));
        cmd.args(args).current_dir(dir.path()).env_remove("KUBECONFIG");
        cmd.output()
    };
    let out = run(&["scan", "--k8s-manifests", "a", "--k8s-manifests", "b", "--out", "reports"])?;
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out.stderr));
    let report = std::fs::read_dir(dir.path().join("reports"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .ok_or("no report")?;
    let out = run(&[
        "remediate",
        "--report",
        report.to_str().ok_or("path")?,
        "--out",
        "reports",
        "--apply",
        "--manifest-out",
        "fixed",
    ])?;
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let (a, b) = (dir.path().join("fixed/a/app.fixed.yaml"), dir.path().join("fixed/b/app.fixed.yaml"));
    assert!(std::fs::read_to_string(&a)?.contains("runAsNonRoot: true"), "a's copy at its own path");
    assert!(!std::fs::symlink_metadata(&b)?.file_type().is_symlink(), "the link was replaced, not followed");
    assert!(std::fs::read_to_string(&b)?.contains("runAsNonRoot: true"), "b's copy at its own path");
    assert_eq!(std::fs::read_to_string(&victim)?, "keep me", "the link's target is untouched");
    assert_eq!(std::fs::metadata(&b)?.permissions().mode() & 0o777, 0o600, "a private source stays private");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("fixed/b"))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Ok(())
}
