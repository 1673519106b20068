//! A validating admission webhook (feature `webhook`): `AdmissionReview` v1
//! over HTTPS, judged with the built-in checks and (feature `rego`) Rego
//! policies.
//!
//! [`Webhook::router`] is an axum `Router` (`POST /validate`, `GET /healthz`)
//! to serve on its own with [`serve_tls`] or to merge into an existing axum
//! service. The certificate and key are read from files and re-read when
//! they change, so a cert-manager renewal needs no restart.
//!
//! The server holds up against clients that hold connections open
//! ([`ServeLimits`]: handshake, header and request timeouts, a connection
//! cap, a backoff when accepting fails) and can demand a client certificate
//! ([`TlsFiles::with_client_ca`]), which the API server can present. The
//! latest decision per object, kept for metrics, is bounded (least recently
//! reviewed objects go first) and dropped when the object is deleted.
//!
//! ```no_run
//! use std::sync::Arc;
//! use compliance_k8s::webhook::{TlsFiles, Webhook, WebhookConfig, serve_tls};
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let webhook = Webhook::new(WebhookConfig::default());
//! let tls = TlsFiles::new("/etc/webhook/tls.crt", "/etc/webhook/tls.key").server_config()?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! serve_tls(listener, webhook.router(), tls, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use compliance_core::{Check, CheckId, Evidence, Severity, Status};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use lru::LruCache;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::admission::{
    AdmissionConfig, AdmissionError, FailurePolicy, admission_resource_id, admission_response, review_with_evidence,
};

/// Settings of the webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// How objects are judged: checks, policies, deny severity, warn-only,
    /// failure policy.
    pub admission: AdmissionConfig,
    /// Namespaces whose requests are allowed without being judged.
    pub exempt_namespaces: Vec<String>,
    /// The longest the webhook judges one request before it answers by the
    /// failure policy. Keep it below the `timeoutSeconds` of the
    /// `ValidatingWebhookConfiguration` (10 s by default), so the webhook,
    /// not the API server, decides.
    #[serde(with = "crate::serde_millis")]
    pub timeout: Duration,
    /// Objects whose latest decision is kept for metrics; beyond, the least
    /// recently reviewed are forgotten. Every real Pod has a unique name, so
    /// without a bound this grows with normal traffic.
    pub max_tracked_objects: usize,
}

/// [`WebhookConfig::max_tracked_objects`] by default.
pub const DEFAULT_MAX_TRACKED_OBJECTS: usize = 10_000;

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            admission: AdmissionConfig::default(),
            exempt_namespaces: Vec::new(),
            timeout: Duration::from_secs(3),
            max_tracked_objects: DEFAULT_MAX_TRACKED_OBJECTS,
        }
    }
}

impl WebhookConfig {
    /// Sets how objects are judged.
    pub fn with_admission(mut self, admission: AdmissionConfig) -> Self {
        self.admission = admission;
        self
    }

    /// Sets the exempt namespaces.
    pub fn with_exempt_namespaces<I: IntoIterator<Item = S>, S: Into<String>>(mut self, namespaces: I) -> Self {
        self.exempt_namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the time limit per request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many objects' latest decisions are kept for metrics (at least one).
    pub fn with_max_tracked_objects(mut self, objects: usize) -> Self {
        self.max_tracked_objects = objects;
        self
    }
}

/// Counts of what the webhook answered since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookStats {
    /// Requests allowed after judging (with or without warnings).
    pub allowed: u64,
    /// Requests denied.
    pub denied: u64,
    /// Requests from exempt namespaces, allowed unjudged.
    pub exempt: u64,
    /// Requests not judged in time, answered by the failure policy.
    pub timed_out: u64,
    /// Bodies that were not an `AdmissionReview` (answered 400).
    pub malformed: u64,
    /// Failing evidence observed (denials and warnings).
    pub failures: u64,
}

/// Errors of the webhook's set-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The certificate or key cannot be used.
    #[error("{path}: {message}")]
    Tls {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// The webhook: judges requests, remembers the latest evidence per object
/// (for metrics, bounded), counts answers.
#[derive(Debug)]
pub struct Webhook {
    config: WebhookConfig,
    /// Resource id -> its latest review, as compact as metrics allow.
    latest: Mutex<LruCache<String, Tracked>>,
    stats: Mutex<WebhookStats>,
}

/// One object's latest review: one evidence with what all its checks share
/// (resource, time, collector), and each check's verdict. About 30 bytes
/// per check instead of a whole evidence (about 150), since there are as
/// many entries as objects reviewed.
#[derive(Debug)]
struct Tracked {
    /// Messages, details and remediation emptied: metrics need none.
    template: Evidence,
    verdicts: Box<[(CheckId, Status, Severity)]>,
}

impl Tracked {
    fn new(evidence: Vec<Evidence>) -> Option<Self> {
        let verdicts = evidence.iter().map(|e| (e.check_id.clone(), e.status, e.severity)).collect();
        let mut template = evidence.into_iter().next()?;
        template.message = String::new();
        template.details = Value::Null;
        template.remediation = None;
        Some(Self { template, verdicts })
    }

    fn evidence(&self) -> impl Iterator<Item = Evidence> + '_ {
        self.verdicts.iter().map(|(check, status, severity)| {
            let mut e = self.template.clone();
            e.check_id = check.clone();
            e.status = *status;
            e.severity = *severity;
            e
        })
    }
}

fn bad_request(message: String) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({ "error": message }))
}

impl Webhook {
    /// A webhook with these settings.
    pub fn new(config: WebhookConfig) -> Arc<Self> {
        let capacity = NonZeroUsize::new(config.max_tracked_objects).unwrap_or(NonZeroUsize::MIN);
        Arc::new(Self { config, latest: Mutex::new(LruCache::new(capacity)), stats: Mutex::default() })
    }

    /// The checks it judges with.
    pub fn checks(&self) -> Vec<Check> {
        self.config.admission.checks.checks()
    }

    /// Answers counted so far.
    pub fn stats(&self) -> WebhookStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// The latest evidence per check and object judged (messages and
    /// details are not kept).
    pub fn evidence(&self) -> Vec<Evidence> {
        self.latest.lock().map(|m| m.iter().flat_map(|(_, t)| t.evidence()).collect()).unwrap_or_default()
    }

    /// How many objects' latest decisions are kept.
    pub fn tracked_objects(&self) -> usize {
        self.latest.lock().map(|m| m.len()).unwrap_or_default()
    }

    fn count(&self, f: impl FnOnce(&mut WebhookStats)) {
        if let Ok(mut stats) = self.stats.lock() {
            f(&mut stats);
        }
    }

    /// Answers one request body: `200` with the `AdmissionReview` response,
    /// or `400` with `{"error": …}` when the body is not an `AdmissionReview`.
    pub async fn handle(self: &Arc<Self>, body: &[u8]) -> (StatusCode, Value) {
        let review: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                self.count(|s| s.malformed += 1);
                return bad_request(format!("the body is not JSON: {e}"));
            }
        };
        let request = &review["request"];
        let (Some(uid), true) = (request["uid"].as_str(), review["kind"] == "AdmissionReview") else {
            self.count(|s| s.malformed += 1);
            return bad_request("not an admission.k8s.io/v1 AdmissionReview with a request.uid".into());
        };
        let uid = uid.to_owned();
        let namespace = request["namespace"].as_str().unwrap_or_default().to_owned();
        if request["operation"] == "DELETE" {
            // A deleted object has no state left to report.
            let (kind, name) = (request["kind"]["kind"].as_str(), request["name"].as_str());
            if let (Some(kind), Some(name), Ok(mut latest)) = (kind, name, self.latest.lock()) {
                latest.pop(&admission_resource_id(request["namespace"].as_str(), kind, name));
            }
        }
        if self.config.exempt_namespaces.contains(&namespace) {
            self.count(|s| s.exempt += 1);
            debug!(uid, namespace, "exempt namespace: allowed unjudged");
            return (StatusCode::OK, admission_response(&uid, true, None, Vec::new()));
        }
        let webhook = Arc::clone(self);
        let judged = tokio::task::spawn_blocking(move || review_with_evidence(&review, &webhook.config.admission));
        match tokio::time::timeout(self.config.timeout, judged).await {
            Ok(Ok(Ok((response, evidence)))) => {
                let allowed = response["response"]["allowed"] == true;
                self.count(|s| if allowed { s.allowed += 1 } else { s.denied += 1 });
                let failing = evidence.iter().filter(|e| e.status == Status::Fail).count();
                self.count(|s| s.failures += failing as u64);
                info!(uid, namespace, allowed, failing, "admission review");
                if let Some(tracked) = Tracked::new(evidence)
                    && let Ok(mut latest) = self.latest.lock()
                {
                    latest.put(tracked.template.resource.id.clone(), tracked);
                }
                (StatusCode::OK, response)
            }
            Ok(Ok(Err(AdmissionError::Malformed(message)))) => {
                self.count(|s| s.malformed += 1);
                bad_request(format!("not an admission.k8s.io/v1 AdmissionReview request: {message}"))
            }
            outcome => {
                let why = match outcome {
                    Err(_) => format!("not judged within {} ms", self.config.timeout.as_millis()),
                    Ok(Err(e)) => format!("judging failed: {e}"),
                    Ok(Ok(_)) => "not judged".to_owned(),
                };
                self.count(|s| s.timed_out += 1);
                warn!(uid, namespace, "{why}; answering by the failure policy");
                let response = match self.config.admission.failure_policy {
                    FailurePolicy::Ignore => admission_response(
                        &uid,
                        true,
                        None,
                        vec![format!("compliance webhook: {why}; allowed (failurePolicy Ignore)")],
                    ),
                    _ => admission_response(
                        &uid,
                        false,
                        Some(format!("compliance webhook: {why}; denied (failurePolicy Fail)")),
                        Vec::new(),
                    ),
                };
                (StatusCode::OK, response)
            }
        }
    }

    /// `POST /validate` (the webhook) and `GET /healthz`.
    pub fn router(self: &Arc<Self>) -> Router {
        async fn validate(State(webhook): State<Arc<Webhook>>, body: Bytes) -> impl IntoResponse {
            let (status, value) = webhook.handle(&body).await;
            (status, axum::Json(value))
        }
        Router::new()
            .route("/validate", post(validate))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(Arc::clone(self))
    }
}

/// The certificate chain and key files (PEM) of the webhook's server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these
    /// CA certificates (PEM): the API server's, so that nobody else can send
    /// reviews (and skew the metrics).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The two files.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self { cert: cert.into(), key: key.into(), client_ca: None }
    }

    /// Demands a client certificate signed by a CA of `ca` (PEM).
    pub fn with_client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }

    /// A rustls server configuration that serves these files and re-reads
    /// them when either changes (checked at most once a second). A change
    /// that does not load is logged and the previous certificate is kept.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, WebhookError> {
        let resolver = ReloadingCert::new(self.clone())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| WebhookError::Tls { path: self.cert.display().to_string(), message: e.to_string() })?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let ca_error = |message: String| WebhookError::Tls { path: ca.display().to_string(), message };
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca).map_err(|e| ca_error(format!("cannot read: {e}")))? {
                    let cert = cert.map_err(|e| ca_error(format!("not a PEM certificate: {e}")))?;
                    roots.add(cert).map_err(|e| ca_error(format!("unusable CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(ca_error("no CA certificate in the file".into()));
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| ca_error(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_key(files: &TlsFiles) -> Result<Arc<CertifiedKey>, WebhookError> {
    let tls_error = |path: &Path, message: String| WebhookError::Tls { path: path.display().to_string(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect)
        .map_err(|e| tls_error(&files.cert, format!("cannot read the certificate: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(&files.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error(&files.key, format!("cannot read the private key: {e}")))?;
    let signing = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| tls_error(&files.key, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| tls_error(&files.key, format!("the key does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

#[derive(Debug)]
struct Loaded {
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
    key: Arc<CertifiedKey>,
}

/// Serves the files' certificate; re-reads them when they change.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    loaded: RwLock<Loaded>,
}

impl ReloadingCert {
    fn new(files: TlsFiles) -> Result<Self, WebhookError> {
        let stamps = (modified(&files.cert), modified(&files.key));
        let key = load_key(&files)?;
        Ok(Self { files, loaded: RwLock::new(Loaded { stamps, checked: Instant::now(), key }) })
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        {
            let loaded = self.loaded.read().ok()?;
            if loaded.checked.elapsed() < Duration::from_secs(1) {
                return Some(Arc::clone(&loaded.key));
            }
        }
        let mut loaded = self.loaded.write().ok()?;
        loaded.checked = Instant::now();
        let stamps = (modified(&self.files.cert), modified(&self.files.key));
        if stamps != loaded.stamps {
            match load_key(&self.files) {
                Ok(key) => {
                    info!(cert = %self.files.cert.display(), "webhook certificate reloaded");
                    loaded.key = key;
                    loaded.stamps = stamps;
                }
                // A renewal may write the two files one after the other: try again on the next check.
                Err(e) => warn!("webhook certificate not reloaded, keeping the previous one: {e}"),
            }
        }
        Some(Arc::clone(&loaded.key))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// Limits of the HTTPS server against clients that hold connections open
/// or flood it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServeLimits {
    /// Time for a client to complete the TLS handshake.
    #[serde(with = "crate::serde_millis")]
    pub handshake_timeout: Duration,
    /// Time for a client to send a request's headers; a kept-alive
    /// connection that sends no new request within it is closed too.
    #[serde(with = "crate::serde_millis")]
    pub header_read_timeout: Duration,
    /// Time for a whole request, body and answer (408 past it).
    #[serde(with = "crate::serde_millis")]
    pub request_timeout: Duration,
    /// Connections served at once; further clients wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            max_connections: 512,
        }
    }
}

impl ServeLimits {
    /// Sets the handshake timeout.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets the header read (and idle) timeout.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets the whole-request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the connection cap (at least one).
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, with the
/// default [`ServeLimits`]; requests in flight are finished.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_tls_with_limits(listener, app, tls, ServeLimits::default(), shutdown).await
}

async fn within(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "the request was not completed in time").into_response(),
    }
}

/// [`serve_tls`] with explicit limits. A failed or slow handshake is logged
/// and dropped; when accepting fails (file descriptors exhausted), the loop
/// backs off (up to a second) instead of spinning, and logs at most once a
/// second.
pub async fn serve_tls_with_limits(
    listener: TcpListener,
    app: Router,
    tls: Arc<ServerConfig>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = app.layer(axum::middleware::from_fn_with_state(limits.request_timeout, within));
    let connections = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (mut backoff, mut failed, mut last_warning) = (Duration::ZERO, 0u64, None::<Instant>);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    failed += 1;
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        warn!(failed, "accept failed: {e}; retrying in {} ms", backoff.as_millis());
                        last_warning = Some(Instant::now());
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => continue,
                    }
                }
            },
        };
        let acceptor = acceptor.clone();
        let stopping = stop.clone();
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake not completed in {} ms", limits.handshake_timeout.as_millis());
                    return;
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopping.cancelled() => {
                    // Finish the request in flight, then close (idle keep-alive connections close at once).
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                debug!(%peer, "connection ended: {e}");
            }
        });
    }
    stop.cancel();
    connections.close();
    // A request stuck past its own timeout does not hold the exit forever.
    if tokio::time::timeout(Duration::from_secs(10), connections.wait()).await.is_err() {
        warn!("connections still open after 10 s; closing");
    }
    Ok(())
}
