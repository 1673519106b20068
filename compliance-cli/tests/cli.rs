//! The `compliance` command as users run it: arguments, exit codes, files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compliance_test_support::kube_api::{FakeApi, Running, deployment};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compliance(args: &[&str]) -> Output {
    compliance_with(args, &[])
}

#[allow(clippy::panic)] // a test helper: not being able to start the binary fails the test
fn compliance_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compliance"));
    cmd.args(args).current_dir(repo()).env_remove("KUBECONFIG");
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| panic!("cannot run compliance: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn report_in(dir: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let path = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("compliance_report_") && n.ends_with(".json") && !n.ends_with(".oscal.json")
            })
        })
        .ok_or("no report written")?;
    let report: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    // Every report a test reads must follow the published schema.
    let schema: Value = serde_json::from_str(compliance_report::REPORT_SCHEMA)?;
    let validator = jsonschema::validator_for(&schema)?;
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "report does not follow the schema: {errors:#?}");
    Ok(report)
}

#[test]
fn version_help_checks_and_frameworks() -> TestResult {
    let out = compliance(&["--version"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("compliance {}", env!("CARGO_PKG_VERSION")));

    let out = compliance(&["checks", "list"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(listing.contains("k8s.pod.run_as_non_root"), "{listing}");
    assert!(listing.lines().any(|l| l.starts_with("k8s.container.privileged") && l.contains("critical")));

    let out = compliance(&["checks", "list", "--format", "json"]);
    let checks: Value = serde_json::from_slice(&out.stdout)?;
    assert!(checks.as_array().is_some_and(|a| a.len() >= 24));

    assert!(compliance(&["frameworks", "list"]).status.success());
    assert_eq!(compliance(&["frameworks", "show", "no-such-framework"]).status.code(), Some(2));
    Ok(())
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["scan"][..],
        &["scan", "--k8s-manifests", "examples/manifests", "--format", "pdf"],
        &["scan", "--k8s-manifests", "examples/manifests", "--fail-on", "severe"],
        &["scan", "--k8s-manifests", "examples/manifests", "--check", "aws.nothing.*"],
        &["scan", "--k8s-manifests", "examples/manifests", "--framework", "hipaa"],
        &["no-such-command"],
    ] {
        let out = compliance(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn scan_writes_the_report_and_fail_on_sets_the_exit_code() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().to_str().ok_or("path")?;
    let out = compliance(&["scan", "--k8s-manifests", "examples/manifests", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("report: "), "{stdout}");
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("Compliance: ")),
        "ends with the summary line: {stdout}"
    );
    let report = report_in(dir.path())?;
    assert_eq!(report["schema_version"], compliance_report::SCHEMA_VERSION);
    assert!(report["total_evidence"].as_u64().is_some_and(|n| n > 50));
    let kinds: Vec<&str> = report["evidence"]
        .as_array()
        .ok_or("evidence")?
        .iter()
        .filter_map(|e| e["resource"]["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"Service"), "a Service is not a workload");

    let out =
        compliance(&["scan", "--k8s-manifests", "examples/manifests", "--out", out_dir, "--fail-on", "high", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).is_empty(), "-q prints no progress: {}", text(&out.stderr));
    // Only the hardened Deployment: nothing fails.
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests/payments-api.yaml",
        "--out",
        out_dir,
        "--fail-on",
        "info",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    Ok(())
}

#[test]
fn waivers_are_applied_and_bad_waiver_files_name_the_problem() -> TestResult {
    let dir = tempfile::tempdir()?;
    let waivers = dir.path().join("w.yaml");
    std::fs::write(
        &waivers,
        "- id: DBG-1\n  check: k8s.*\n  resource: '*/kube-system/Pod/node-debugger'\n  reason: incident 4711\n  owner: sre@example.com\n  expires: 2099-01-01\n",
    )?;
    let w = waivers.to_str().ok_or("path")?;
    let out_dir = dir.path().to_str().ok_or("path")?;
    let args = [
        "scan",
        "--k8s-manifests",
        "examples/manifests/debug-pod.yaml",
        "--out",
        out_dir,
        "--fail-on",
        "high",
        "--waivers",
        w,
    ];
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(0), "every failure is waived: {}", text(&out.stdout));
    let report = report_in(dir.path())?;
    let failing: Vec<&Value> =
        report["evidence"].as_array().ok_or("evidence")?.iter().filter(|e| e["status"] == "fail").collect();
    assert!(!failing.is_empty());
    assert!(failing.iter().all(|e| e["waiver"]["id"] == "DBG-1"), "waived failures keep status fail");

    std::fs::write(&waivers, "- id: X\n  check: k8s.*\n  owner: me\n  expires: 2099-01-01\n")?;
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("w.yaml:1: waiver #1 (id X): missing field `reason`"), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn unreadable_files_are_gaps_named_by_file_and_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("good.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}]\n",
    )?;
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nspec:\n  replicas: {{ .Values.replicas }}\n",
    )?;
    let out_dir = dir.path().join("out");
    let manifests = dir.path().to_str().ok_or("path")?;
    let out = compliance(&["scan", "--k8s-manifests", manifests, "--out", out_dir.to_str().ok_or("path")?]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken.yaml:4"), "{stderr}");
    let report = report_in(&out_dir)?;
    assert_eq!(report["gaps"].as_array().map(Vec::len), Some(1));
    assert!(report["evidence"].as_array().is_some_and(|e| !e.is_empty()), "the good file is still judged");
    let out =
        compliance(&["scan", "--k8s-manifests", manifests, "--out", out_dir.to_str().ok_or("path")?, "--fail-on-gaps"]);
    assert_eq!(out.status.code(), Some(1));
    Ok(())
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_scan_and_remediation_against_moto() -> TestResult {
    let Some(moto) = compliance_test_support::moto::Moto::start()? else { return Ok(()) };
    let endpoint = moto.endpoint();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    for user in ["dormant", "fresh"] {
        iam.create_user().user_name(user).send().await?;
        iam.create_login_profile().user_name(user).password("Pa55word!x").send().await?;
    }
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(200)).to_rfc3339();
    moto.set_credential_report(
        &json!({ "users": { "dormant": { "password_last_used": long_ago, "user_creation_time": long_ago } } }),
    )?;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket("open-data").send().await?;

    let dir = tempfile::tempdir()?;
    let out = dir.path().to_str().ok_or("path")?.to_owned();
    let aws = ["--aws-endpoint-url", endpoint.as_str(), "--aws-region", "us-east-1"];
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            compliance_with(&args, &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")])
        })
    };
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();

    let mut scan = owned(&["scan", "--aws", "--out", &out, "--fail-on", "high"]);
    scan.extend(owned(&aws));
    let result = run(scan).await?;
    assert_eq!(result.status.code(), Some(1), "the dormant user is a high failure: {}", text(&result.stderr));
    let report = report_in(dir.path())?;
    assert_eq!(report["gaps"].as_array().map(Vec::len), Some(0), "{}", report["gaps"]);
    let evidence = report["evidence"].as_array().ok_or("evidence")?;
    let find = |check: &str, name: &str| {
        evidence.iter().find(|e| e["check_id"] == check && e["resource"]["name"] == name).map(|e| e["status"].clone())
    };
    assert_eq!(find("aws.iam.user_inactive", "dormant"), Some(json!("fail")));
    assert_eq!(find("aws.iam.user_inactive", "fresh"), Some(json!("pass")));
    assert_eq!(find("aws.s3.versioning", "open-data"), Some(json!("fail")));
    let report_path =
        std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()).map(|e| e.path()).next().ok_or("no report")?;
    let report_arg = report_path.to_str().ok_or("path")?.to_owned();

    // Dry run: the exact calls, nothing changed.
    let mut remediate = owned(&["remediate", "--report", &report_arg, "--out", &out]);
    remediate.extend(owned(&aws));
    let result = run(remediate.clone()).await?;
    assert_eq!(result.status.code(), Some(0), "{}{}", text(&result.stdout), text(&result.stderr));
    assert!(text(&result.stdout).contains("s3:PutBucketVersioning --bucket open-data"), "{}", text(&result.stdout));
    assert!(s3.get_bucket_versioning().bucket("open-data").send().await?.status().is_none());

    // Apply without approval: S3 fixes go through, disabling the user does not.
    let mut apply = remediate.clone();
    apply.push("--apply".into());
    let result = run(apply.clone()).await?;
    assert_eq!(result.status.code(), Some(1), "{}", text(&result.stdout));
    assert_eq!(
        s3.get_bucket_versioning().bucket("open-data").send().await?.status().map(|s| s.as_str().to_owned()).as_deref(),
        Some("Enabled")
    );
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_ok());

    // With --yes, after review.
    apply.extend(owned(&["--yes", "--check", "aws.iam.user_inactive"]));
    let result = run(apply).await?;
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stdout));
    assert!(iam.get_login_profile().user_name("dormant").send().await.is_err());
    assert!(iam.get_login_profile().user_name("fresh").send().await.is_ok());
    Ok(())
}

#[test]
fn aws_without_a_region_is_a_usage_error() {
    let out = compliance(&["scan", "--aws"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no AWS region"), "{}", text(&out.stderr));
}

#[test]
fn built_in_mappings_name_known_checks_and_explain_every_unmapped_check() -> TestResult {
    let checks: Value = serde_json::from_slice(&compliance(&["checks", "list", "--format", "json"]).stdout)?;
    let ids: Vec<&str> = checks.as_array().ok_or("checks")?.iter().filter_map(|c| c["id"].as_str()).collect();
    for (file, framework) in compliance_report::builtin_mappings() {
        let known = |c: &compliance_core::CheckId| c.as_str().starts_with("aws.config.") || ids.contains(&c.as_str());
        compliance_report::check_known(&framework, file, known)?;
        for id in &ids {
            let mapped = framework.framework.controls.iter().any(|c| c.checks.iter().any(|k| k.as_str() == *id));
            let explained = framework.unmapped.keys().any(|k| k.as_str() == *id);
            assert!(mapped || explained, "{file}: {id} maps to no control and the file does not say why");
        }
    }
    Ok(())
}

#[test]
fn frameworks_show_and_scores_in_the_report() -> TestResult {
    let out = compliance(&["frameworks", "list"]);
    let listing = text(&out.stdout);
    for id in ["soc2", "iso27001", "pci-dss"] {
        assert!(listing.lines().any(|l| l.starts_with(id)), "{listing}");
    }
    let out = compliance(&["frameworks", "show", "soc2"]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("CC6.8") && shown.contains("k8s.pod.run_as_non_root"), "{shown}");

    let dir = tempfile::tempdir()?;
    let own = dir.path().join("baseline.yaml");
    std::fs::write(
        &own,
        "id: baseline\nname: Our baseline\nversion: '1'\ncontrols:\n  - {id: B-1, title: No root, checks: [k8s.pod.run_as_non_root]}\n",
    )?;
    let out_dir = dir.path().join("out");
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--framework",
        "soc2",
        "--framework-file",
        own.to_str().ok_or("path")?,
        "--out",
        out_dir.to_str().ok_or("path")?,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let last = text(&out.stdout).lines().last().map(str::to_owned).unwrap_or_default();
    assert!(last.contains("; soc2 ") && last.contains("; baseline 0.0%"), "{last}");
    let report = report_in(&out_dir)?;
    let ids: Vec<&str> =
        report["frameworks"].as_array().ok_or("frameworks")?.iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(ids, ["soc2", "baseline"]);

    std::fs::write(
        &own,
        "id: baseline\nname: Our baseline\nversion: '1'\ncontrols:\n  - {id: B-1, title: No root, checks: [k8s.pod.runs_as_root]}\n",
    )?;
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--framework-file",
        own.to_str().ok_or("path")?,
        "--out",
        out_dir.to_str().ok_or("path")?,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("control \"B-1\": unknown check k8s.pod.runs_as_root"), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn previous_report_gives_the_changes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests)?;
    std::fs::copy(repo().join("examples/manifests/payments-api.yaml"), manifests.join("a.yaml"))?;
    let first = dir.path().join("first");
    let m = manifests.to_str().ok_or("path")?;
    assert!(compliance(&["scan", "--k8s-manifests", m, "--out", first.to_str().ok_or("path")?]).status.success());
    let previous = std::fs::read_dir(&first)?.filter_map(|e| e.ok()).map(|e| e.path()).next().ok_or("no report")?;
    std::fs::copy(repo().join("examples/manifests/legacy-worker.yaml"), manifests.join("b.yaml"))?;
    let second = dir.path().join("second");
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        m,
        "--out",
        second.to_str().ok_or("path")?,
        "--previous",
        previous.to_str().ok_or("path")?,
        "--format",
        "json",
        "--format",
        "markdown",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Since the previous run: 11 new failures, 0 resolved, 0 still failing"), "{stdout}");
    let report = report_in(&second)?;
    assert_eq!(report["delta"]["new_failures"].as_array().map(Vec::len), Some(11));
    Ok(())
}

#[test]
fn every_format_in_one_scan() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().to_str().ok_or("path")?;
    let mut args = vec!["scan", "--k8s-manifests", "examples/manifests", "--out", out_dir, "--fail-on", "high"];
    for f in ["json", "markdown", "html", "junit", "sarif", "oscal", "csv", "prometheus"] {
        args.extend(["--format", f]);
    }
    let out = compliance(&args);
    assert_eq!(out.status.code(), Some(1), "high failures exist: {}", text(&out.stderr));
    let written: Vec<String> =
        std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    for ext in [".json", ".md", ".html", ".junit.xml", ".sarif", ".oscal.json", ".csv", ".prom"] {
        let file =
            written.iter().find(|n| n.ends_with(ext) && (ext != ".json" || !n.ends_with(".oscal.json"))).ok_or(ext)?;
        let body = std::fs::read_to_string(dir.path().join(file))?;
        assert!(!body.is_empty(), "{file}");
        if ext.ends_with("json") || ext == ".sarif" {
            let _: Value = serde_json::from_str(&body)?;
        }
    }
    report_in(dir.path())?;
    assert_eq!(written.len(), 8, "{written:?}");
    Ok(())
}

#[test]
fn rego_policies_are_checks_mapped_to_controls_and_broken_ones_are_gaps() -> TestResult {
    let policies = tempfile::tempdir()?;
    std::fs::copy(repo().join("examples/policies/article-v1.rego"), policies.path().join("article.rego"))?;
    std::fs::write(policies.path().join("broken.rego"), "package broken\n\ndeny contains msg if {\n  msg := \n}\n")?;
    let out = tempfile::tempdir()?;
    let o = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--rego-policy",
        policies.path().to_str().ok_or("path")?,
        "--out",
        out.path().to_str().ok_or("path")?,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("broken.rego:4"), "{stderr}");
    let report = report_in(out.path())?;
    let rego: Vec<&Value> = report["evidence"]
        .as_array()
        .ok_or("evidence")?
        .iter()
        .filter(|e| e["check_id"] == "rego.article.soc2_admission")
        .collect();
    assert_eq!(rego.len(), 4, "one per workload in examples/manifests");
    let legacy = rego.iter().find(|e| e["resource"]["name"] == "legacy-worker").ok_or("legacy-worker")?;
    assert_eq!(legacy["status"], "fail");
    assert!(legacy["message"].as_str().unwrap_or_default().starts_with("Missing required compliance labels"));
    let soc2 = report["frameworks"].as_array().ok_or("frameworks")?.iter().find(|f| f["id"] == "soc2").ok_or("soc2")?;
    let cc61 = soc2["controls"].as_array().ok_or("controls")?.iter().find(|c| c["id"] == "CC6.1").ok_or("CC6.1")?;
    assert!(cc61["checks"].as_array().ok_or("checks")?.iter().any(|c| c == "rego.article.soc2_admission"));
    let gaps = report["gaps"].as_array().ok_or("gaps")?;
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0]["source"].as_str().unwrap_or_default().ends_with("broken.rego:4"), "{gaps:?}");
    Ok(())
}

#[tokio::test]
async fn webhook_answers_reviews_and_serves_metrics_over_https_then_stops_on_sigterm() -> TestResult {
    use compliance_test_support::tls::{TestCert, request};
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_compliance"))
        .args(["webhook", "--listen", &addr.to_string(), "--rego-policy", "examples/policies/article-v0.rego"])
        .arg("--tls-cert")
        .arg(&cert.cert)
        .arg("--tls-key")
        .arg(&cert.key)
        .current_dir(repo())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while request(addr, &cert.der, "GET", "/healthz", "").await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the webhook did not come up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "cli-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop", "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},
                "spec": {"containers": [{"name": "sh", "image": "busybox:1.36", "securityContext": {"privileged": true}}]}}}});
    let r = request(addr, &cert.der, "POST", "/validate", &review.to_string()).await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_str(&r.body)?;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let metrics = request(addr, &cert.der, "GET", "/metrics", "").await.map_err(|e| e.to_string())?;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains(r#"compliance_check_failed{check="k8s.container.privileged",severity="critical"} 1"#),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains(r#"compliance_check_failed{check="rego.kubernetes.admission",severity="medium"} 1"#),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("compliance_score_percentage"), "{}", metrics.body);

    let kill = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    assert!(kill.success());
    let output = child.wait_with_output()?;
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stderr).contains("webhook stopped: 0 allowed, 1 denied"), "{}", text(&output.stderr));
    Ok(())
}

#[test]
fn terraform_findings_point_at_file_and_line_in_sarif() -> TestResult {
    let out = tempfile::tempdir()?;
    let o = compliance(&[
        "scan",
        "--terraform",
        "examples/terraform",
        "--format",
        "sarif",
        "--format",
        "json",
        "--out",
        out.path().to_str().ok_or("path")?,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report = report_in(out.path())?;
    assert_eq!(report["total_evidence"], 20);
    let sarif_path = std::fs::read_dir(out.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "sarif"))
        .ok_or("no SARIF")?;
    let sarif: Value = serde_json::from_slice(&std::fs::read(sarif_path)?)?;
    let results = sarif["runs"][0]["results"].as_array().ok_or("results")?;
    let legacy_pab = results
        .iter()
        .find(|r| {
            r["ruleId"] == "aws.s3.public_access_block"
                && r["message"]["text"].as_str().is_some_and(|t| t.contains("no public access block"))
                && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 77
        })
        .ok_or("no SARIF result for the legacy bucket at main.tf:77")?;
    let uri = legacy_pab["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap_or_default();
    assert_eq!(uri, "examples/terraform/main.tf");
    Ok(())
}

fn free_port() -> Result<u16, Box<dyn std::error::Error>> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn http_get(url: &str) -> Option<(u16, String)> {
    let output = tokio::process::Command::new("curl").args(["-s", "-w", "\n%{http_code}", url]).output().await.ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_owned()))
}

/// The test API server with one Deployment, `shop/web`, and a kubeconfig
/// for it (context `staging`) in `dir`.
async fn cluster_with_web(dir: &Path) -> Result<(Running, PathBuf), Box<dyn std::error::Error>> {
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", json!({"containers": [{"name": "web", "image": "web:1"}]})));
    let server = api.start().await?;
    let kubeconfig = server.write_kubeconfig(dir, "staging")?;
    Ok((server, kubeconfig))
}

/// `compliance monitor --config CONFIG` in the background, in the repository.
fn spawn_monitor(config: &Path, kubeconfig: Option<&Path>) -> std::io::Result<tokio::process::Child> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_compliance"));
    command.args(["monitor", "--config"]).arg(config).current_dir(repo()).stderr(std::process::Stdio::null());
    if let Some(k) = kubeconfig {
        command.env("KUBECONFIG", k);
    }
    command.spawn()
}

/// SIGTERM, then the exit code (within 30 s).
async fn terminate(mut child: tokio::process::Child) -> Result<Option<i32>, Box<dyn std::error::Error>> {
    std::process::Command::new("kill").args(["-TERM", &child.id().ok_or("pid")?.to_string()]).status()?;
    Ok(tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await??.code())
}

/// Waits until `url` answers 200; fails the test after a minute.
async fn wait_for_200(url: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !matches!(http_get(url).await, Some((200, _))) {
        assert!(std::time::Instant::now() < deadline, "{url} never answered 200");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The first notification the sink received about `check`, waiting at most `within`.
async fn notification_about(
    sink: &compliance_test_support::sink::Sink,
    check: &str,
    within: std::time::Duration,
) -> Result<Value, String> {
    let started = std::time::Instant::now();
    loop {
        let found = sink
            .received()
            .into_iter()
            .find(|n| n["changes"].as_array().is_some_and(|c| c.iter().any(|c| c["check_id"] == check)));
        if let Some(n) = found {
            return Ok(n);
        }
        if started.elapsed() > within {
            return Err(format!("no notification about {check} within {within:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The PostgreSQL server's URL for a fresh database, or `None` (skipped, and said).
async fn postgres_database() -> Result<Option<String>, Box<dyn std::error::Error>> {
    let admin = std::env::var("COMPLIANCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned());
    sqlx::any::install_default_drivers();
    let pool = match sqlx::AnyPool::connect(&admin).await {
        Ok(p) => p,
        Err(e) => {
            assert_ne!(std::env::var("COMPLIANCE_REQUIRE_POSTGRES").as_deref(), Ok("1"), "PostgreSQL required: {e}");
            eprintln!("SKIPPED (PostgreSQL half): {admin}: {e}");
            return Ok(None);
        }
    };
    let name = format!("compliance_cli_{}_{}", std::process::id(), free_port()?);
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await?;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
    Ok(Some(format!("{base}/{name}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_sees_a_change_between_cycles_stores_alerts_and_verifies_on_both_backends() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut stores = vec![format!("sqlite://{}", dir.path().join("evidence.db").display())];
    stores.extend(postgres_database().await?);
    for store in stores {
        let manifests = dir.path().join(format!("manifests-{}", free_port()?));
        std::fs::create_dir_all(&manifests)?;
        std::fs::copy(repo().join("examples/manifests/payments-api.yaml"), manifests.join("payments-api.yaml"))?;
        let sink = compliance_test_support::sink::Sink::start().await?;
        let hook = sink.url.clone();
        let port = free_port()?;
        let config = dir.path().join("monitor.yaml");
        std::fs::write(
            &config,
            format!(
                "scan:\n  k8s_manifests: [{}]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{port}\nalerts:\n  webhook_url: {hook}\n  min_interval: 0s\n",
                manifests.display()
            ),
        )?;
        let child = spawn_monitor(&config, None)?;
        let metrics_url = format!("http://127.0.0.1:{port}/metrics");
        wait_for_200(&metrics_url).await;
        // The change between cycles: a privileged debug pod appears.
        std::fs::copy(repo().join("examples/manifests/debug-pod.yaml"), manifests.join("debug-pod.yaml"))?;
        let notification = notification_about(&sink, "k8s.container.privileged", std::time::Duration::from_secs(60))
            .await
            .map_err(|e| format!("{store}: {e}"))?;
        let changes = notification["changes"].as_array().ok_or("changes")?;
        assert_eq!(changes[0]["kind"], "new_failure", "{notification}");
        assert_eq!(changes[0]["severity"], "critical", "most severe first: {notification}");
        assert!(notification["summary"].as_str().unwrap_or_default().starts_with("compliance drift:"));
        let (_, metrics) = http_get(&metrics_url).await.ok_or("metrics")?;
        assert!(
            metrics.contains(r#"compliance_check_failed{check="k8s.container.privileged",severity="critical"} 1"#),
            "{store}: {metrics}"
        );
        assert!(metrics.contains("compliance_violations_total"), "{metrics}");
        let (code, health) = http_get(&format!("http://127.0.0.1:{port}/healthz")).await.ok_or("healthz")?;
        assert_eq!(code, 200);
        assert!(health.starts_with("ok"), "{health}");

        // SIGTERM: the service stops, exit 0.
        assert_eq!(terminate(child).await?, Some(0), "{store}");

        let verify = compliance(&["evidence", "verify", "--store", &store]);
        assert_eq!(verify.status.code(), Some(0), "{store}: {}", text(&verify.stdout));
        assert!(text(&verify.stdout).starts_with("chain intact:"), "{}", text(&verify.stdout));
        let runs = compliance(&["evidence", "runs", "--store", &store, "--format", "json"]);
        let runs: Value = serde_json::from_slice(&runs.stdout)?;
        assert!(runs.as_array().is_some_and(|r| r.len() >= 2), "{runs}");
        let history = compliance(&[
            "evidence",
            "history",
            "--store",
            &store,
            "--format",
            "json",
            &format!("{}#0/kube-system/Pod/node-debugger", manifests.join("debug-pod.yaml").display()),
        ]);
        let history: Value = serde_json::from_slice(&history.stdout)?;
        assert!(history.as_array().is_some_and(|h| !h.is_empty()), "{store}: {history}");

        // Tampering with the database directly is caught, and named.
        let tampered = compliance_store::SqlStore::open(&store).await?;
        sqlx::query("UPDATE records SET body = REPLACE(body, '\"fail\"', '\"pass\"') WHERE seq = (SELECT MIN(seq) FROM records WHERE status = 'fail')")
            .execute(tampered.pool())
            .await?;
        tampered.pool().close().await;
        let verify = compliance(&["evidence", "verify", "--store", &store]);
        assert_eq!(verify.status.code(), Some(1), "{store}");
        assert!(text(&verify.stdout).contains("TAMPERED: record"), "{}", text(&verify.stdout));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_stores_plans_that_need_approval_and_remediate_approve_applies_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (server, kubeconfig) = cluster_with_web(dir.path()).await?;
    let store = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_cluster: true\n  checks: [k8s.container.memory_limit, k8s.container.read_only_root_filesystem]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\nremediation:\n  default: never\n  checks:\n    \"k8s.container.memory_limit\": ask\n    \"k8s.container.read_only_root_filesystem\": auto\n",
            free_port()?
        ),
    )?;
    let kube_env = [("KUBECONFIG", kubeconfig.to_str().unwrap_or_default())];
    let config_arg = config.to_str().ok_or("path")?.to_owned();
    let env: Vec<(String, String)> = kube_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let run = move |args: Vec<String>| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            compliance_with(&args, &env)
        })
    };
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let out = run(strings(&["monitor", "--config", &config_arg, "--cycles", "1"])).await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // `ask`: stored, nothing applied. `auto` on a high-risk fix (read-only root filesystem): also held.
    let list =
        run(strings(&["remediate", "list", "--store", &store, "--state", "pending", "--format", "json"])).await?;
    let plans: Value = serde_json::from_slice(&list.stdout)?;
    let plans = plans.as_array().ok_or("plans")?;
    assert_eq!(plans.len(), 2, "{plans:?}");
    assert!(server.api.seen().iter().all(|s| s.method != "PATCH" || s.query.get("dryRun").is_some_and(|d| d == "All")));
    let memory = plans.iter().find(|p| p["plan"]["check_id"] == "k8s.container.memory_limit").ok_or("memory plan")?;
    let id = memory["plan"]["id"].as_str().ok_or("id")?.to_owned();
    let other = plans.iter().find(|p| p["plan"]["id"] != id.as_str()).ok_or("other plan")?;
    let other_id = other["plan"]["id"].as_str().ok_or("id")?.to_owned();

    let approve = run(strings(&[
        "remediate",
        "approve",
        &id,
        "--store",
        &store,
        "--by",
        "alice@example.com",
        "--reason",
        "CHG-42",
    ]))
    .await?;
    assert_eq!(approve.status.code(), Some(0), "{}{}", text(&approve.stdout), text(&approve.stderr));
    let applied = server.api.get("deployments", "shop", "web").ok_or("deployment")?;
    assert!(applied.to_string().contains("512Mi"), "{applied}");
    let show = run(strings(&["remediate", "show", &id, "--store", &store, "--format", "json"])).await?;
    let shown: Value = serde_json::from_slice(&show.stdout)?;
    assert_eq!(shown["state"], "applied");
    assert_eq!(shown["decision"]["by"], "alice@example.com");
    assert_eq!(shown["outcome"]["verification"]["status"], "pass", "{shown}");

    let reject = run(strings(&["remediate", "reject", &other_id, "--store", &store, "--by", "bob"])).await?;
    assert_eq!(reject.status.code(), Some(0));
    let again = run(strings(&["remediate", "approve", &other_id, "--store", &store])).await?;
    assert_eq!(again.status.code(), Some(2), "a rejected plan cannot be approved");
    assert!(text(&again.stderr).contains("only pending plans can be approved"), "{}", text(&again.stderr));
    let verify = run(strings(&["evidence", "verify", "--store", &store])).await?;
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_watch_mode_judges_a_changed_workload_within_seconds_not_at_the_next_interval() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (server, kubeconfig) = cluster_with_web(dir.path()).await?;
    let store = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let sink = compliance_test_support::sink::Sink::start().await?;
    let hook = sink.url.clone();
    let port = free_port()?;
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_cluster: true\ninterval: 1h\nwatch: true\nstore: {store}\nlisten: 127.0.0.1:{port}\nalerts:\n  webhook_url: {hook}\n  min_interval: 0s\n"
        ),
    )?;
    let child = spawn_monitor(&config, Some(&kubeconfig))?;
    wait_for_200(&format!("http://127.0.0.1:{port}/metrics")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server.api.seen().iter().any(|s| s.path.ends_with("/deployments") && s.query.contains_key("watch")) {
        assert!(std::time::Instant::now() < deadline, "no watch");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let changed = std::time::Instant::now();
    server.api.update(
        "deployments",
        deployment(
            "shop",
            "web",
            json!({"containers": [{"name": "web", "image": "web:2", "securityContext": {"privileged": true}}]}),
        ),
    );
    notification_about(&sink, "k8s.container.privileged", std::time::Duration::from_secs(15))
        .await
        .map_err(|e| format!("the change was not judged within seconds: {e}"))?;
    eprintln!("watch: change judged and notified in {:?}", changed.elapsed());
    let (_, metrics) = http_get(&format!("http://127.0.0.1:{port}/metrics")).await.ok_or("metrics")?;
    assert!(
        metrics.contains(r#"compliance_check_failed{check="k8s.container.privileged",severity="critical"} 1"#),
        "{metrics}"
    );
    assert_eq!(terminate(child).await?, Some(0));
    let runs = compliance(&["evidence", "runs", "--store", &store, "--format", "json"]);
    let runs: Value = serde_json::from_slice(&runs.stdout)?;
    let sources: Vec<&str> = runs.as_array().ok_or("runs")?.iter().filter_map(|r| r["source"].as_str()).collect();
    assert_eq!(sources, ["monitor", "watch"], "one scan (the interval is an hour), then the watch's run");
    let verify = compliance(&["evidence", "verify", "--store", &store]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    Ok(())
}

#[test]
fn a_restarted_monitor_continues_from_the_stored_history() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_manifests: [examples/manifests]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\n",
            free_port()?
        ),
    )?;
    let config = config.to_str().ok_or("path")?;
    let first = compliance(&["monitor", "--config", config, "--cycles", "1"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(!text(&first.stderr).contains("Since the previous run"), "nothing to compare the first run with");
    let second = compliance(&["monitor", "--config", config, "--cycles", "1"]);
    let stderr = text(&second.stderr);
    assert!(
        stderr.contains("Since the previous run: 0 new failures, 0 resolved, 27 still failing"),
        "the restarted monitor compares with the stored history: {stderr}"
    );
    Ok(())
}
