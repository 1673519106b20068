//! The validating admission webhook over real HTTPS on loopback: Pod,
//! Deployment and an unjudged kind, a malformed body, exemptions, warn-only,
//! a slow policy (timeout path), certificate reload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_k8s::webhook::{TlsFiles, Webhook, WebhookConfig, serve_tls};
use compliance_k8s::{AdmissionConfig, CheckConfig, FailurePolicy, RegoConfig, RegoPolicies, RegoPolicy};
use compliance_test_support::tls::{TestCert, request};
use serde_json::{Value, json};
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
