//! The validating admission webhook over real HTTPS on loopback: Pod,
//! Deployment and an unjudged kind, a malformed body, exemptions, warn-only,
//! a slow policy (timeout path), certificate reload; and hostile clients:
//! silent and slow connections, a connection flood, a slow body, unknown
//! clients when a client CA is set, and a flood of unique objects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_k8s::webhook::{ServeLimits, TlsFiles, Webhook, WebhookConfig, serve_tls, serve_tls_with_limits};
use compliance_k8s::{AdmissionConfig, CheckConfig, FailurePolicy, RegoConfig, RegoPolicies, RegoPolicy};
use compliance_test_support::tls::{TestCert, TestClientCa, connect, request, request_as};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::TestResult;

struct Server {
    addr: SocketAddr,
    webhook: Arc<Webhook>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(config: WebhookConfig, tls: &TlsFiles) -> Result<Server, Box<dyn std::error::Error>> {
    let webhook = Webhook::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve_tls(listener, webhook.router(), tls.server_config()?, async {
        let _ = stopped.await;
    }));
    Ok(Server { addr, webhook, stop: Some(stop), done })
}

async fn start_with(limits: ServeLimits, tls: &TlsFiles) -> Result<Server, Box<dyn std::error::Error>> {
    let webhook = Webhook::new(WebhookConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve_tls_with_limits(listener, webhook.router(), tls.server_config()?, limits, async {
        let _ = stopped.await;
    }));
    Ok(Server { addr, webhook, stop: Some(stop), done })
}

/// Whether the server closes `stream` (EOF or reset) within `within`.
async fn closed_by_server(stream: &mut (impl AsyncReadExt + Unpin), within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

impl Server {
    async fn review(
        &self,
        cert: &TestCert,
        body: &Value,
    ) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
        let r = request(self.addr, &cert.der, "POST", "/validate", &body.to_string()).await?;
        Ok((r.status, serde_json::from_str(&r.body)?))
    }

    async fn stop(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done.await??;
        Ok(())
    }
}

fn review_of(uid: &str, namespace: &str, object: Value) -> Value {
    let kind = object["kind"].clone();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:deployer"},
            "object": object,
            "dryRun": false
        }
    })
}

fn privileged_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},
           "spec": {"containers": [{"name": "sh", "image": "busybox:1.36", "securityContext": {"privileged": true}}]}})
}

fn policies() -> Result<RegoPolicies, Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/soc2-workloads.rego");
    let (set, errors) = RegoPolicies::load(&[dir], &RegoConfig::default());
    assert!(errors.is_empty(), "{errors:?}");
    Ok(set)
}

#[tokio::test]
async fn pods_and_deployments_are_judged_and_other_kinds_allowed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let admission = AdmissionConfig::default().with_checks(CheckConfig::default().with_policies(policies()?));
    let server =
        start(WebhookConfig::default().with_admission(admission), &TlsFiles::new(&cert.cert, &cert.key)).await?;

    let (status, answer) =
        server.review(&cert, &review_of("pod-1", "shop", privileged_pod())).await.map_err(|e| e.to_string())?;
    assert_eq!(status, 200);
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "pod-1");
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("k8s.container.privileged (critical)"), "{message}");
    assert!(message.contains("the pod does not set securityContext.runAsNonRoot: true"), "{message}");

    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "labels": {
            "data-classification": "internal", "data-retention": "1y", "compliance-scope": "soc2"}},
        "spec": {"template": {"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "api", "image": "registry.example.com/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}}]}}}});
    let (_, answer) = server.review(&cert, &review_of("dep-1", "shop", deployment)).await.map_err(|e| e.to_string())?;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");

    let config_map =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}});
    let (_, answer) = server.review(&cert, &review_of("cm-1", "shop", config_map)).await.map_err(|e| e.to_string())?;
    assert_eq!(answer["response"], json!({"uid": "cm-1", "allowed": true}));

    let stats = server.webhook.stats();
    assert_eq!((stats.allowed, stats.denied), (2, 1));
    assert!(server.webhook.evidence().iter().any(|e| e.check_id.as_str() == "k8s.container.privileged"));
    let health = request(server.addr, &cert.der, "GET", "/healthz", "").await.map_err(|e| e.to_string())?;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    server.stop().await
}

#[tokio::test]
async fn a_malformed_body_is_a_400_with_a_clear_message() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let server = start(WebhookConfig::default(), &TlsFiles::new(&cert.cert, &cert.key)).await?;
    let r =
        request(server.addr, &cert.der, "POST", "/validate", "{\"apiVersion\": ").await.map_err(|e| e.to_string())?;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("the body is not JSON: EOF while parsing"), "{}", r.body);
    let r =
        request(server.addr, &cert.der, "POST", "/validate", r#"{"kind": "Pod"}"#).await.map_err(|e| e.to_string())?;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not an admission.k8s.io/v1 AdmissionReview"), "{}", r.body);
    assert_eq!(server.webhook.stats().malformed, 2);
    server.stop().await
}

#[tokio::test]
async fn exempt_namespaces_and_warn_only_allow() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let tls = TlsFiles::new(&cert.cert, &cert.key);
    let server = start(WebhookConfig::default().with_exempt_namespaces(["kube-system"]), &tls).await?;
    let (_, answer) =
        server.review(&cert, &review_of("u", "kube-system", privileged_pod())).await.map_err(|e| e.to_string())?;
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(server.webhook.stats().exempt, 1);
    server.stop().await?;

    let warn_only = WebhookConfig::default().with_admission(AdmissionConfig::default().warn_only(true));
    let server = start(warn_only, &tls).await?;
    let (_, answer) =
        server.review(&cert, &review_of("u", "shop", privileged_pod())).await.map_err(|e| e.to_string())?;
    assert_eq!(answer["response"]["allowed"], true);
    let warnings = answer["response"]["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap_or_default().starts_with("k8s.container.privileged")),
        "{answer}"
    );
    server.stop().await
}

#[tokio::test]
async fn a_slow_policy_is_answered_by_the_failure_policy_within_the_timeout() -> TestResult {
    let slow = "package slow\n\ndeny contains msg if {\n  some i in numbers.range(1, 100000)\n  some j in numbers.range(1, 100000)\n  i == j + 1000000\n  msg := \"never\"\n}\n";
    let mut set = RegoPolicies::default();
    set.push(RegoPolicy::from_source(slow, "slow.rego", &RegoConfig::default())?)?;
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let tls = TlsFiles::new(&cert.cert, &cert.key);
    for (policy, allowed) in [(FailurePolicy::Fail, false), (FailurePolicy::Ignore, true)] {
        let admission = AdmissionConfig::default()
            .with_checks(CheckConfig::default().with_policies(set.clone()))
            .with_failure_policy(policy);
        let config = WebhookConfig::default().with_admission(admission).with_timeout(Duration::from_millis(200));
        let server = start(config, &tls).await?;
        let started = Instant::now();
        let (status, answer) =
            server.review(&cert, &review_of("slow", "shop", privileged_pod())).await.map_err(|e| e.to_string())?;
        let took = started.elapsed();
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["allowed"], allowed, "{answer}");
        assert!(answer.to_string().contains("not judged within 200 ms"), "{answer}");
        // Well inside the API server's default 10 s, whatever the machine's load.
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(server.webhook.stats().timed_out, 1);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = TestCert::write(dir.path());
    let server = start(WebhookConfig::default(), &TlsFiles::new(&first.cert, &first.key)).await?;
    let r = request(server.addr, &first.der, "GET", "/healthz", "").await.map_err(|e| e.to_string())?;
    assert_eq!(r.server_cert, first.der);

    let second = TestCert::write(dir.path()); // same paths, new key and certificate
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        match request(server.addr, &second.der, "GET", "/healthz", "").await {
            Ok(r) if r.server_cert == second.der => break,
            _ if Instant::now() < deadline => continue,
            other => return Err(format!("the new certificate was not served: {:?}", other.err()).into()),
        }
    }
    // A broken renewal keeps the current certificate.
    std::fs::write(&second.key, "not a key")?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = request(server.addr, &second.der, "GET", "/healthz", "").await.map_err(|e| e.to_string())?;
    assert_eq!(r.server_cert, second.der);
    server.stop().await
}

#[tokio::test]
async fn silent_and_slow_clients_are_disconnected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let limits = ServeLimits::default()
        .with_handshake_timeout(Duration::from_millis(300))
        .with_header_read_timeout(Duration::from_millis(300))
        .with_request_timeout(Duration::from_millis(600));
    let server = start_with(limits, &TlsFiles::new(&cert.cert, &cert.key)).await?;

    // A TCP connection that never starts the TLS handshake.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await?;
    assert!(closed_by_server(&mut silent, Duration::from_secs(10)).await, "a silent connection is closed");

    // Headers that never end.
    let mut slow = connect(server.addr, &cert.der).await.map_err(|e| e.to_string())?;
    slow.write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\n").await?;
    assert!(closed_by_server(&mut slow, Duration::from_secs(10)).await, "slow headers are cut off");

    // A body that never ends: 408.
    let mut stalled = connect(server.addr, &cert.der).await.map_err(|e| e.to_string())?;
    stalled.write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{").await?;
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut answer)).await??;
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );

    // A kept-alive connection that goes quiet after a request is closed too.
    let mut idle = connect(server.addr, &cert.der).await.map_err(|e| e.to_string())?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await?;
    assert!(closed_by_server(&mut idle, Duration::from_secs(10)).await, "an idle keep-alive connection is closed");

    // The server still answers.
    let r = request(server.addr, &cert.der, "GET", "/healthz", "").await.map_err(|e| e.to_string())?;
    assert_eq!(r.status, 200);
    server.stop().await
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_is_free() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let limits = ServeLimits::default().with_max_connections(2).with_handshake_timeout(Duration::from_secs(60));
    let server = start_with(limits, &TlsFiles::new(&cert.cert, &cert.key)).await?;
    let holders =
        vec![tokio::net::TcpStream::connect(server.addr).await?, tokio::net::TcpStream::connect(server.addr).await?];
    // Both permits are held by connections that say nothing: a third client is not served.
    let third =
        tokio::time::timeout(Duration::from_millis(700), request(server.addr, &cert.der, "GET", "/healthz", "")).await;
    assert!(third.is_err(), "a third connection was served beyond the cap of two");
    drop(holders);
    let r = tokio::time::timeout(Duration::from_secs(10), request(server.addr, &cert.der, "GET", "/healthz", ""))
        .await?
        .map_err(|e| e.to_string())?;
    assert_eq!(r.status, 200, "served once a connection closed");
    server.stop().await
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificate_are_served() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let api_server = TestClientCa::write(dir.path(), "kube-apiserver")?;
    let tls = TlsFiles::new(&cert.cert, &cert.key).with_client_ca(&api_server.ca);
    let server = start(WebhookConfig::default(), &tls).await?;
    let review = review_of("u-1", "shop", privileged_pod()).to_string();
    let anonymous = request_as(server.addr, &cert.der, None, "POST", "/validate", &review).await;
    assert!(anonymous.is_err(), "a client without a certificate is refused");
    let other = dir.path().join("other");
    std::fs::create_dir(&other)?;
    let stranger = TestClientCa::write(&other, "someone")?;
    let forged = request_as(server.addr, &cert.der, Some(&stranger), "POST", "/validate", &review).await;
    assert!(forged.is_err(), "a certificate from another CA is refused");
    assert_eq!(server.webhook.stats().denied, 0, "nothing was judged for them");
    let r = request_as(server.addr, &cert.der, Some(&api_server), "POST", "/validate", &review)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(r.status, 200);
    assert_eq!(server.webhook.stats().denied, 1);
    server.stop().await
}

#[tokio::test]
async fn a_client_ca_file_without_a_certificate_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    let empty = dir.path().join("empty-ca.crt");
    std::fs::write(&empty, "")?;
    let error = TlsFiles::new(&cert.cert, &cert.key).with_client_ca(&empty).server_config().err().ok_or("accepted")?;
    assert!(error.to_string().contains("empty-ca.crt: no CA certificate"), "{error}");
    Ok(())
}

#[tokio::test]
async fn the_latest_decisions_are_bounded_and_a_deleted_object_is_forgotten() -> TestResult {
    let webhook = Webhook::new(WebhookConfig::default().with_max_tracked_objects(50));
    for i in 0..200 {
        let mut pod = privileged_pod();
        pod["metadata"]["name"] = json!(format!("pod-{i}"));
        let (status, _) = webhook.handle(review_of(&format!("u-{i}"), "shop", pod).to_string().as_bytes()).await;
        assert_eq!(status, 200);
    }
    assert_eq!(webhook.tracked_objects(), 50, "only the 50 most recent objects are kept");
    let evidence = webhook.evidence();
    assert!(evidence.iter().all(|e| e.message.is_empty() && e.details.is_null()), "kept without messages and details");
    assert!(evidence.iter().any(|e| e.resource.name == "pod-199"));
    assert!(!evidence.iter().any(|e| e.resource.name == "pod-0"), "the oldest object was forgotten");
    let delete = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "d-1", "operation": "DELETE", "namespace": "shop", "name": "pod-199",
        "kind": {"group": "", "version": "v1", "kind": "Pod"}, "oldObject": privileged_pod()}});
    let (status, answer) = webhook.handle(delete.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(webhook.tracked_objects(), 49);
    assert!(!webhook.evidence().iter().any(|e| e.resource.name == "pod-199"), "a deleted object is forgotten");
    Ok(())
}
