//! `compliance webhook`: admission reviews and metrics over HTTPS, SIGTERM.

use serde_json::{Value, json};

use crate::support::{TestResult, free_port, repo, text};

#[tokio::test]
async fn webhook_answers_reviews_and_serves_metrics_over_https_then_stops_on_sigterm() -> TestResult {
    use compliance_test_support::tls::{TestCert, request};
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_compliance"))
        .args(["webhook", "--listen", &addr.to_string(), "--rego-policy", "examples/policies/soc2-workloads.rego"])
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
        metrics.body.contains(r#"compliance_check_failed{check="rego.example.soc2_workloads",severity="high"} 1"#),
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
