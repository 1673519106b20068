//! `compliance monitor`: cycles, alerts, watch mode, stored plans and history, with its helpers.

use std::path::Path;

use compliance_test_support::kube_api::deployment;
use serde_json::{Value, json};

use crate::support::{TestResult, cluster_with_web, compliance, compliance_with, free_port, repo, text};

async fn http_get(url: &str) -> Option<(u16, String)> {
    let output = tokio::process::Command::new("curl").args(["-s", "-w", "\n%{http_code}", url]).output().await.ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_owned()))
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

/// A fresh database on the PostgreSQL server `scripts/test` starts (or at
/// `COMPLIANCE_TEST_POSTGRES_URL`).
async fn postgres_database() -> Result<String, Box<dyn std::error::Error>> {
    let admin = std::env::var("COMPLIANCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin)
        .await
        .map_err(|e| format!("no PostgreSQL server at {admin} ({e}): scripts/test starts one"))?;
    let name = format!("compliance_cli_{}_{}", std::process::id(), free_port()?);
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await?;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
    Ok(format!("{base}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_sees_a_change_between_cycles_stores_alerts_and_verifies_on_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    monitor_sees_a_change_between_cycles(&dir, format!("sqlite://{}", dir.path().join("evidence.db").display())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts one on 127.0.0.1:55432"]
async fn monitor_sees_a_change_between_cycles_stores_alerts_and_verifies_on_postgres() -> TestResult {
    let dir = tempfile::tempdir()?;
    monitor_sees_a_change_between_cycles(&dir, postgres_database().await?).await
}

async fn monitor_sees_a_change_between_cycles(dir: &tempfile::TempDir, store: String) -> TestResult {
    {
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
        stderr.contains("Since the previous run: 0 new failures, 0 resolved, 30 still failing"),
        "the restarted monitor compares with the stored history: {stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_writes_policy_reports_into_the_cluster_and_removes_stale_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (server, kubeconfig) = cluster_with_web(dir.path()).await?;
    let report = |ns: &str, managed: bool| {
        let labels = if managed { json!({"app.kubernetes.io/managed-by": "compliance-rs"}) } else { json!({}) };
        json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
               "metadata": {"name": "compliance-rs", "namespace": ns, "labels": labels}, "results": []})
    };
    // A namespace that had workloads in an earlier run, and another tool's report.
    server.api.add("policyreports", report("gone", true));
    server.api.add("policyreports", report("other", false));
    let store = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_cluster: true\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\npolicy_reports: true\n",
            free_port()?
        ),
    )?;
    let (config_arg, kube) = (config.to_str().ok_or("path")?.to_owned(), kubeconfig.to_str().ok_or("path")?.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        compliance_with(&["monitor", "--config", &config_arg, "--cycles", "1"], &[("KUBECONFIG", &kube)])
    })
    .await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let shop = server.api.get("policyreports", "shop", "compliance-rs").ok_or("no report for shop")?;
    let results = shop["results"].as_array().ok_or("results")?;
    assert!(results.len() > 20, "every check on shop/web: {}", results.len());
    assert!(results.iter().all(|r| r["resources"][0]["name"] == "web" && r["source"] == "compliance-rs"));
    let failed = results.iter().filter(|r| r["result"] == "fail").count();
    assert_eq!(shop["summary"]["fail"], failed);
    assert!(failed > 0, "web:1 has no limits, runs as root, ...");
    assert_eq!(shop["metadata"]["managedFields"][0]["manager"], "compliance-rs");
    // Applied with server-side apply, forced, by its field manager.
    let applies: Vec<_> = server
        .api
        .seen()
        .into_iter()
        .filter(|s| s.content_type.as_deref() == Some("application/apply-patch+yaml"))
        .collect();
    assert!(!applies.is_empty());
    assert!(applies.iter().all(|s| s.query.get("fieldManager").is_some_and(|m| m == "compliance-rs")
        && s.query.get("force").is_some_and(|f| f == "true")));
    assert!(server.api.get("policyreports", "gone", "compliance-rs").is_none(), "the stale report is removed");
    assert!(server.api.get("policyreports", "other", "compliance-rs").is_some(), "another tool's report is left alone");
    assert!(
        server.api.get("clusterpolicyreports", "", "compliance-rs").is_none(),
        "a cluster with only namespaced workloads gets no cluster-wide report"
    );
    Ok(())
}

#[test]
fn policy_reports_need_a_cluster_to_write_to() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("monitor.yaml");
    std::fs::write(&config, "scan:\n  k8s_manifests: [examples/manifests]\npolicy_reports: true\n")?;
    let out = compliance(&["monitor", "--config", config.to_str().ok_or("path")?, "--cycles", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("policy_reports: needs scan.k8s_cluster: true"), "{}", text(&out.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_resource_changed_since_is_not_approved() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (server, kubeconfig) = cluster_with_web(dir.path()).await?;
    let store = format!("sqlite://{}", dir.path().join("evidence.db").display());
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_cluster: true\n  checks: [k8s.container.memory_limit]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\nremediation:\n  default: ask\n",
            free_port()?
        ),
    )?;
    let kube = kubeconfig.to_str().ok_or("path")?.to_owned();
    let config_arg = config.to_str().ok_or("path")?.to_owned();
    let (kube2, store2) = (kube.clone(), store.clone());
    let out = tokio::task::spawn_blocking(move || {
        compliance_with(&["monitor", "--config", &config_arg, "--cycles", "1"], &[("KUBECONFIG", &kube2)])
    })
    .await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list = compliance(&["remediate", "list", "--store", &store2, "--state", "pending", "--format", "json"]);
    let plans: Value = serde_json::from_slice(&list.stdout)?;
    let id = plans[0]["plan"]["id"].as_str().ok_or("no pending plan")?.to_owned();
    // The Deployment is changed after the plan was made: its container is now `app`.
    server
        .api
        .update("deployments", deployment("shop", "web", json!({"containers": [{"name": "app", "image": "web:1"}]})));
    let store3 = store.clone();
    let out = tokio::task::spawn_blocking(move || {
        compliance_with(&["remediate", "approve", &id, "--by", "alice", "--store", &store3], &[("KUBECONFIG", &kube)])
    })
    .await?;
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("changed since the plan was made"), "{}", text(&out.stdout));
    assert!(
        server.api.seen().iter().all(|s| s.method != "PATCH" || s.query.get("dryRun").is_some_and(|d| d == "All")),
        "nothing was changed"
    );
    let pending = compliance(&["remediate", "list", "--store", &store, "--state", "pending", "--format", "json"]);
    let still: Value = serde_json::from_slice(&pending.stdout)?;
    assert_eq!(still.as_array().map(Vec::len), Some(1), "the plan stays pending, undecided");
    Ok(())
}

/// kill -9 while the monitor appends large runs, several times at different
/// moments: the chain verifies after each kill, and every stored run is whole.
fn killed_mid_append_leaves_an_intact_chain(store: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests)?;
    // 400 workloads: 10,000 evidence per run, so an append takes a while.
    let mut yaml = String::new();
    for i in 0..400 {
        yaml.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{i}, namespace: shop}}\nspec:\n  template:\n    spec:\n      containers: [{{name: app, image: \"app:{i}\"}}]\n"
        ));
    }
    std::fs::write(manifests.join("many.yaml"), yaml)?;
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_manifests: [{}]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\n",
            manifests.display(),
            free_port()?
        ),
    )?;
    let mut runs_seen = 0;
    for (round, delay_ms) in [2500u64, 3300, 4100, 4900, 5700, 6500].into_iter().enumerate() {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_compliance"))
            .args(["monitor", "--config"])
            .arg(&config)
            .current_dir(repo())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]).status()?;
        let _ = child.wait();
        let verify = compliance(&["evidence", "verify", "--store", store]);
        let printed = text(&verify.stdout);
        // Before the first append completes there is no chain yet (exit 1, "no chain").
        if printed.contains("no chain to verify") {
            continue;
        }
        assert_eq!(verify.status.code(), Some(0), "round {round}, killed after {delay_ms} ms: {printed}");
        let runs = compliance(&["evidence", "runs", "--store", store, "--format", "json"]);
        let runs: Value = serde_json::from_slice(&runs.stdout)?;
        let runs = runs.as_array().ok_or("runs")?;
        assert!(runs.len() >= runs_seen, "stored runs are never lost");
        for r in runs {
            assert_eq!(r["evidence"], 10_000, "every stored run is whole: {r}");
        }
        runs_seen = runs.len();
    }
    assert!(runs_seen > 0, "at least one run was stored between the kills");
    Ok(())
}

#[test]
fn kill_9_during_appends_leaves_an_intact_chain_on_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    killed_mid_append_leaves_an_intact_chain(&format!("sqlite://{}", dir.path().join("evidence.db").display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test starts one on 127.0.0.1:55432"]
async fn kill_9_during_appends_leaves_an_intact_chain_on_postgres() -> TestResult {
    let url = postgres_database().await?;
    tokio::task::spawn_blocking(move || killed_mid_append_leaves_an_intact_chain(&url).map_err(|e| e.to_string()))
        .await??;
    Ok(())
}

/// A PostgreSQL server of this test's own (the shared one must not restart
/// under other tests): initdb and pg_ctl from Debian's package.
struct OwnPostgres {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn pg(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        let as_root = std::process::Command::new("id").arg("-u").output()?.stdout.starts_with(b"0");
        let mut cmd = if as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(args[0]));
            c
        } else {
            std::process::Command::new(self.bin.join(args[0]))
        };
        cmd.args(&args[1..]).output()
    }

    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("PostgreSQL's binaries are missing ({e}): scripts/test installs them"))?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort();
        let bin = versions.pop().ok_or("no initdb: scripts/test installs PostgreSQL")?;
        let dir = tempfile::Builder::new().prefix("compliance-pg-").tempdir_in("/var/tmp")?;
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let _ = std::process::Command::new("chown").args(["postgres:postgres"]).arg(&data).status();
        let pg = OwnPostgres { bin, data, port: free_port()?, _dir: dir };
        let data_arg = pg.data.to_str().ok_or("path")?.to_owned();
        let init = pg.pg(&["initdb", "-D", &data_arg, "-A", "trust", "-U", "postgres"])?;
        if !init.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&init.stderr)).into());
        }
        pg.up()?;
        Ok(pg)
    }

    fn up(&self) -> Result<(), Box<dyn std::error::Error>> {
        let data = self.data.to_str().ok_or("path")?;
        let options = format!("-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={data}", self.port);
        let log = format!("{data}/server.log");
        let out = self.pg(&["pg_ctl", "-D", data, "-l", &log, "-w", "-o", &options, "start"])?;
        if !out.status.success() {
            return Err(format!("pg_ctl start: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }

    fn down(&self) -> Result<(), Box<dyn std::error::Error>> {
        let out = self.pg(&["pg_ctl", "-D", self.data.to_str().ok_or("path")?, "-m", "fast", "-w", "stop"])?;
        if !out.status.success() {
            return Err(format!("pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

fn stored_runs(store: &str) -> usize {
    let out = compliance(&["evidence", "runs", "--store", store, "--format", "json"]);
    serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL's binaries (initdb, pg_ctl): scripts/test installs them"]
async fn a_postgres_restart_while_monitoring_loses_no_run() -> TestResult {
    let pg = OwnPostgres::start()?;
    let store = pg.url();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_manifests: [examples/manifests]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\n",
            free_port()?
        ),
    )?;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_compliance"))
        .args(["monitor", "--config"])
        .arg(&config)
        .current_dir(repo())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stored_runs(&store) < 2 {
        assert!(std::time::Instant::now() < deadline, "no runs stored");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // Down longer than the pool waits for a connection (10 s), then back.
    pg.down()?;
    tokio::time::sleep(std::time::Duration::from_secs(13)).await;
    pg.up()?;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let pid = child.id().ok_or("pid")?;
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await??;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("run not stored yet"), "the outage was seen: {stderr}");
    let cycles: usize = stderr
        .lines()
        .find_map(|l| l.strip_prefix("monitor stopped after ")?.split_whitespace().next()?.parse().ok())
        .ok_or("no cycle count")?;
    assert_eq!(stored_runs(&store), cycles, "every cycle's run is stored, those of the outage included: {stderr}");
    let verify = compliance(&["evidence", "verify", "--store", &store]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    Ok(())
}
