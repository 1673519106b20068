//! Several clusters in one scan: three contexts of one kubeconfig, one of
//! them unreachable.

use compliance_test_support::kube_api::{FakeApi, deployment};
use serde_json::{Value, json};

use crate::support::{TestResult, compliance_with, free_port, report_in, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_context_is_judged_and_an_unreachable_one_is_one_gap_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut servers = Vec::new();
    for (context, image) in [("prod", "web:1"), ("staging", "web@sha256:0123")] {
        let api = FakeApi::default();
        api.add("deployments", deployment("shop", "web", json!({"containers": [{"name": "web", "image": image}]})));
        servers.push((context, api.start().await?));
    }
    // Nothing listens there.
    let down = format!("http://127.0.0.1:{}", free_port()?);
    let mut clusters = String::new();
    let mut contexts = String::new();
    for (name, url) in servers.iter().map(|(c, s)| (*c, s.url.as_str())).chain([("down", down.as_str())]) {
        clusters.push_str(&format!("- name: {name}\n  cluster:\n    server: {url}\n"));
        contexts.push_str(&format!("- name: {name}\n  context:\n    cluster: {name}\n    user: tester\n"));
    }
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n{clusters}contexts:\n{contexts}users:\n- name: tester\n  user:\n    token: t\n"
        ),
    )?;
    let out_dir = dir.path().join("reports");
    let kubeconfig = kubeconfig.to_str().ok_or("path")?;
    let args = ["scan", "--k8s-cluster", "--k8s-all-contexts", "--format", "json", "--format", "csv", "--out"];
    let mut args: Vec<&str> = args.to_vec();
    args.push(out_dir.to_str().ok_or("path")?);
    let out = compliance_with(&args, &[("KUBECONFIG", kubeconfig)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Not a terminal: a progress line per cluster, counted in targets.
    let progress = text(&out.stderr);
    assert!(progress.contains("[engine] 3 targets"), "{progress}");
    assert!(progress.contains("k8s:prod done (") && progress.contains("k8s:down done ("), "{progress}");

    let report = report_in(&out_dir)?;
    let targets = report["targets"].as_array().ok_or("no targets")?;
    let target = |id: &str| targets.iter().find(|t| t["id"] == id).cloned().unwrap_or(Value::Null);
    assert!(target("k8s:prod")["passed"].as_u64().unwrap_or(0) > 0);
    assert!(target("k8s:staging")["passed"].as_u64().unwrap_or(0) > 0);
    assert_eq!(target("k8s:down")["gaps"], 1, "{targets:#?}");
    let gaps = report["gaps"].as_array().ok_or("no gaps")?;
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    assert_eq!(gaps[0]["target"], "k8s:down");
    // Every evidence names its cluster; the two differ where their images do.
    let evidence = report["evidence"].as_array().ok_or("no evidence")?;
    assert!(evidence.iter().all(|e| e["resource"]["cluster"] == "prod" || e["resource"]["cluster"] == "staging"));
    let digest = |cluster: &str| {
        evidence
            .iter()
            .find(|e| e["check_id"] == "k8s.container.image_digest" && e["resource"]["cluster"] == cluster)
            .map(|e| e["status"].clone())
    };
    assert_eq!((digest("prod"), digest("staging")), (Some(json!("fail")), Some(json!("pass"))));

    // --fail-on-gaps counts the unreachable cluster; a shard of the contexts scans only its own.
    let strict = compliance_with(&[&args[..], &["--fail-on-gaps"]].concat(), &[("KUBECONFIG", kubeconfig)]);
    assert_eq!(strict.status.code(), Some(1));
    let mut seen = Vec::new();
    for k in 0..3 {
        let shard_dir = dir.path().join(format!("shard-{k}"));
        let shard = format!("{k}/3");
        let shard_args = [
            "scan",
            "--k8s-cluster",
            "--k8s-all-contexts",
            "--shard",
            &shard,
            "--out",
            shard_dir.to_str().ok_or("path")?,
        ];
        let out = compliance_with(&shard_args, &[("KUBECONFIG", kubeconfig)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        if let Ok(report) = report_in(&shard_dir) {
            for t in report["targets"].as_array().into_iter().flatten() {
                seen.push(t["id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ["k8s:down", "k8s:prod", "k8s:staging"], "each context in exactly one shard");
    drop(servers);
    Ok(())
}
