//! `compliance webhook`: admission reviews over HTTPS, metrics on their own
//! listener, SIGTERM; no busy loop when file descriptors run out.

use serde_json::{Value, json};

use crate::support::{TestResult, free_port, repo, text};

struct Plain {
    status: u16,
    body: String,
}

/// A plain HTTP GET (curl, from scripts/provision.sh).
fn http_get(url: &str) -> Result<Plain, Box<dyn std::error::Error>> {
    let out = std::process::Command::new("curl").args(["-sS", "-m", "10", "-w", "\n%{http_code}", url]).output()?;
    let all = text(&out.stdout);
    let (body, code) = all.rsplit_once('\n').ok_or("no status from curl")?;
    Ok(Plain { status: code.trim().parse()?, body: body.to_owned() })
}

/// A running `compliance webhook` (optionally under a wrapper such as
/// `prlimit`), its address, and the certificate it serves.
struct Running {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    cert: compliance_test_support::tls::TestCert,
    _dir: tempfile::TempDir,
}

/// Starts the webhook with `extra` arguments and waits until it answers.
async fn start_webhook(wrapper: &[&str], extra: &[&str]) -> Result<Running, Box<dyn std::error::Error>> {
    use compliance_test_support::tls::{TestCert, request};
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(env!("CARGO_BIN_EXE_compliance"));
            c
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_compliance")),
    };
    let child = command
        .args(["webhook", "--listen", &addr.to_string()])
        .args(extra)
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
    Ok(Running { child, addr, cert, _dir: dir })
}

#[tokio::test]
async fn webhook_answers_reviews_and_serves_metrics_over_https_then_stops_on_sigterm() -> TestResult {
    use compliance_test_support::tls::request;
    let metrics_addr = format!("127.0.0.1:{}", free_port()?);
    let extra = ["--rego-policy", "examples/policies/soc2-workloads.rego", "--metrics-listen", &metrics_addr];
    let Running { child, addr, cert, _dir } = start_webhook(&[], &extra).await?;
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "cli-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop", "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},
                "spec": {"containers": [{"name": "sh", "image": "busybox:1.36", "securityContext": {"privileged": true}}]}}}});
    let r = request(addr, &cert.der, "POST", "/validate", &review.to_string()).await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_str(&r.body)?;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let on_webhook_port = request(addr, &cert.der, "GET", "/metrics", "").await.map_err(|e| e.to_string())?;
    assert_eq!(on_webhook_port.status, 404, "the webhook's port serves only reviews");
    let metrics = http_get(&format!("http://{metrics_addr}/metrics"))?;
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

#[tokio::test]
async fn with_file_descriptors_exhausted_the_webhook_backs_off_and_recovers() -> TestResult {
    use compliance_test_support::tls::request;
    // 64 descriptors: a few hundred connections exhaust them (the cap of 512 is not reached).
    let metrics_addr = format!("127.0.0.1:{}", free_port()?);
    let Running { child, addr, cert, _dir } =
        start_webhook(&["prlimit", "--nofile=64:64"], &["--metrics-listen", &metrics_addr]).await?;
    let started = std::time::Instant::now();
    let mut flood = Vec::new();
    for _ in 0..300 {
        // Past the listen queue a connect waits; do not wait for it.
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(c)) = tokio::time::timeout(std::time::Duration::from_millis(200), connect).await {
            flood.push(c);
        }
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    drop(flood);
    // The flood's connections end (closed by us, or at the handshake timeout); the server answers again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let attempt = request(addr, &cert.der, "GET", "/healthz", "");
        if let Ok(Ok(r)) = tokio::time::timeout(std::time::Duration::from_secs(2), attempt).await
            && r.status == 200
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the webhook did not recover");
    }
    let elapsed = started.elapsed().as_secs() + 1;
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    let output = child.wait_with_output()?;
    let stderr = text(&output.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("accept failed")).collect();
    assert!(!warnings.is_empty(), "descriptors ran out: {stderr}");
    // At most one warning a second (the audit saw 5.2 million lines in 10 s) ...
    assert!(warnings.len() as u64 <= elapsed + 1, "{} warnings in {elapsed} s", warnings.len());
    // ... and the failed accepts themselves are paced by the backoff, not a busy loop.
    let attempts: u64 = warnings
        .iter()
        .filter_map(|l| l.rsplit("failed=").next()?.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or_default();
    assert!(attempts <= 200 * elapsed, "{attempts} failed accepts in {elapsed} s");
    assert_eq!(output.status.code(), Some(0), "{}", &stderr[..stderr.len().min(2000)]);
    Ok(())
}
