//! A Kubernetes API server for tests: real HTTP and the real wire format for
//! the calls compliance-k8s makes (list with `limit`/`continue` and an
//! equality `labelSelector`, get, watch, strategic-merge patch with
//! `dryRun=All`, server-side apply, delete, `Status` error bodies), fed with
//! object JSON. No real API server can be installed on these machines.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Objects by plural resource name, in list order.
    objects: BTreeMap<String, Vec<Value>>,
    forbidden_namespaces: HashSet<String>,
    /// Fail this many list calls before answering.
    failures_left: usize,
    /// With which status (500 by default), and after how long.
    failure_status: u16,
    failure_delay: std::time::Duration,
    seen: Vec<Seen>,
    resource_version: u64,
}

/// The server's state: objects by resource, forbidden namespaces, injected
/// failures, and every request seen. Clones share the state.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
    /// Watch events: (plural, `{"type", "object"}`).
    events: tokio::sync::broadcast::Sender<(String, Value)>,
}

impl Default for FakeApi {
    fn default() -> Self {
        Self { inner: Arc::default(), events: tokio::sync::broadcast::channel(256).0 }
    }
}

/// A started server.
pub struct Running {
    /// Its state.
    pub api: FakeApi,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// A kube client for this server, configured as
    /// `compliance_k8s::kube_client` configures its own (no kube retries:
    /// the collector's own bounded retries are what is tested).
    pub fn client(&self) -> Result<kube::Client, Box<dyn std::error::Error>> {
        let mut config = kube::Config::new(self.url.parse()?);
        config.default_retry = false;
        Ok(kube::Client::try_from(config)?)
    }

    /// Writes a kubeconfig whose current context `context` points to this
    /// server, and returns its path.
    pub fn write_kubeconfig(&self, dir: &std::path::Path, context: &str) -> std::io::Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: test\n  cluster:\n    server: {url}\ncontexts:\n- name: {context}\n  context:\n    cluster: test\n    user: tester\n    namespace: default\nusers:\n- name: tester\n  user:\n    token: test-token\n",
            url = self.url
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

impl FakeApi {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores an object under its plural resource name (`deployments`).
    pub fn add(&self, plural: &str, object: Value) {
        self.lock().objects.entry(plural.to_owned()).or_default().push(object);
    }

    /// Creates or replaces an object (by namespace and name), as a client's
    /// update would, and sends the watch event (`ADDED` or `MODIFIED`).
    pub fn update(&self, plural: &str, mut object: Value) {
        let mut inner = self.lock();
        inner.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(inner.resource_version.to_string());
        let (ns, name) = (object["metadata"]["namespace"].clone(), object["metadata"]["name"].clone());
        let list = inner.objects.entry(plural.to_owned()).or_default();
        let kind = match list.iter_mut().find(|o| o["metadata"]["namespace"] == ns && o["metadata"]["name"] == name) {
            Some(existing) => {
                *existing = object.clone();
                "MODIFIED"
            }
            None => {
                list.push(object.clone());
                "ADDED"
            }
        };
        drop(inner);
        let _ = self.events.send((plural.to_owned(), json!({"type": kind, "object": object})));
    }

    /// Answers 403 for everything in this namespace.
    pub fn forbid(&self, namespace: &str) {
        self.lock().forbidden_namespaces.insert(namespace.to_owned());
    }

    /// Answers the next `n` list calls with 500.
    pub fn fail_next_lists(&self, n: usize) {
        self.fail_next_lists_with(n, 500, std::time::Duration::ZERO);
    }

    /// Answers the next `n` list calls with `status` (429 for throttling,
    /// 500, 503), each after `delay` (a slow server).
    pub fn fail_next_lists_with(&self, n: usize, status: u16, delay: std::time::Duration) {
        let mut inner = self.lock();
        inner.failures_left = n;
        inner.failure_status = status;
        inner.failure_delay = delay;
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// The stored object, if any.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(plural)?.iter().find(|o| is(o, namespace, name)).cloned()
    }

    /// Serves on a free loopback port.
    pub async fn start(self) -> Result<Running, Box<dyn std::error::Error>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(handle).with_state(self.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Running { api: self, url, _task: task })
    }
}

/// `namespace` is empty for a cluster-scoped object.
fn is(object: &Value, namespace: &str, name: &str) -> bool {
    object["metadata"]["namespace"].as_str().unwrap_or_default() == namespace && object["metadata"]["name"] == name
}

/// Whether `object` matches an equality label selector (`a=b,c=d`).
fn selected(object: &Value, selector: Option<&String>) -> bool {
    selector.is_none_or(|s| {
        s.split(',').filter(|t| !t.is_empty()).all(|term| {
            term.split_once('=').is_some_and(|(k, v)| object["metadata"]["labels"][k.trim_end_matches('=')] == v)
        })
    })
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Path parts: (namespace, plural, name).
fn route(path: &str) -> Option<(Option<String>, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    match rest {
        [plural] => Some((None, (*plural).to_owned(), None)),
        ["namespaces", ns, plural] => Some((Some((*ns).to_owned()), (*plural).to_owned(), None)),
        ["namespaces", ns, plural, name] => {
            Some((Some((*ns).to_owned()), (*plural).to_owned(), Some((*name).to_owned())))
        }
        [plural, name] => Some((None, (*plural).to_owned(), Some((*name).to_owned()))),
        _ => None,
    }
}

async fn handle(
    State(api): State<FakeApi>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3D", "=").replace("%2F", "/").replace("%2C", ",")))
        .collect();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Injected failures of list calls, answered without holding the lock across the delay.
    let is_list = method == Method::GET
        && !matches!(query.get("watch").map(String::as_str), Some("true" | "1"))
        && route(uri.path()).is_some_and(|(_, _, name)| name.is_none());
    if is_list {
        let injected = {
            let mut inner = api.lock();
            if inner.failures_left > 0 {
                inner.failures_left -= 1;
                inner.seen.push(Seen {
                    method: method.to_string(),
                    path: uri.path().to_owned(),
                    query: query.clone(),
                    content_type: content_type.clone(),
                });
                Some((inner.failure_status, inner.failure_delay))
            } else {
                None
            }
        };
        if let Some((code, delay)) = injected {
            tokio::time::sleep(delay).await;
            return match code {
                429 => status(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later".into(),
                ),
                503 => status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request".into(),
                ),
                _ => status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "etcdserver: leader changed".into()),
            };
        }
    }
    let mut inner = api.lock();
    inner.seen.push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        content_type: content_type.clone(),
    });
    let Some((namespace, plural, name)) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource {}", uri.path()),
        );
    };
    if let Some(ns) = &namespace
        && inner.forbidden_namespaces.contains(ns)
    {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{plural} is forbidden: User \"system:serviceaccount:audit:scanner\" cannot list resource \"{plural}\" in the namespace \"{ns}\""
            ),
        );
    }
    match (method, name) {
        (Method::GET, None) if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) => {
            // A watch: newline-delimited events as they happen, until the client goes away.
            let events = api.events.subscribe();
            let stream = futures::stream::unfold(events, move |mut events| {
                let (plural, namespace) = (plural.clone(), namespace.clone());
                async move {
                    loop {
                        match events.recv().await {
                            Ok((p, event))
                                if p == plural
                                    && namespace
                                        .as_ref()
                                        .is_none_or(|ns| event["object"]["metadata"]["namespace"] == *ns) =>
                            {
                                let line = Bytes::from(format!("{event}\n"));
                                return Some((Ok::<_, std::convert::Infallible>(line), events));
                            }
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                }
            });
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(stream))
                .into_response()
        }
        (Method::GET, None) => {
            let all = inner.objects.get(&plural).cloned().unwrap_or_default();
            let visible: Vec<Value> = all
                .into_iter()
                .filter(|o| namespace.as_ref().is_none_or(|ns| o["metadata"]["namespace"] == *ns))
                .filter(|o| selected(o, query.get("labelSelector")))
                .filter(|o| {
                    !inner.forbidden_namespaces.contains(o["metadata"]["namespace"].as_str().unwrap_or_default())
                        || namespace.is_some()
                })
                .collect();
            let start: usize = query.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
            let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
            let end = start.saturating_add(limit).min(visible.len());
            let mut metadata = json!({"resourceVersion": "100"});
            if end < visible.len() {
                metadata["continue"] = json!(end.to_string());
                metadata["remainingItemCount"] = json!(visible.len() - end);
            }
            // Items of a list carry no apiVersion/kind, as from a real server.
            let items: Vec<Value> = visible[start.min(end)..end]
                .iter()
                .map(|o| {
                    let mut o = o.clone();
                    if let Some(m) = o.as_object_mut() {
                        m.remove("apiVersion");
                        m.remove("kind");
                    }
                    o
                })
                .collect();
            ok(json!({"apiVersion": "v1", "kind": "List", "metadata": metadata, "items": items}))
        }
        (Method::GET, Some(name)) => {
            let ns = namespace.unwrap_or_default();
            match inner.objects.get(&plural).and_then(|l| l.iter().find(|o| is(o, &ns, &name))) {
                Some(o) => ok(o.clone()),
                None => status(StatusCode::NOT_FOUND, "NotFound", format!("{plural} \"{name}\" not found")),
            }
        }
        (Method::PATCH, Some(name)) if content_type.as_deref() == Some("application/apply-patch+yaml") => {
            // Server-side apply: create or update the object this manager owns.
            let Some(manager) = query.get("fieldManager").cloned() else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "PATCH /apply: fieldManager is required for apply requests".into(),
                );
            };
            // YAML is a superset of JSON; clients send JSON.
            let Ok(mut applied) = serde_json::from_slice::<Value>(&body) else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "the apply body is not JSON".into());
            };
            let ns = namespace.unwrap_or_default();
            if applied["metadata"]["name"] != name.as_str() || applied["kind"].as_str().is_none_or(str::is_empty) {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("the applied object must have kind and metadata.name {name:?}"),
                );
            }
            inner.resource_version += 1;
            let version = inner.resource_version.to_string();
            let list = inner.objects.entry(plural.clone()).or_default();
            let existing = list.iter().position(|o| is(o, &ns, &name));
            let (uid, created) = match existing.map(|i| &list[i]) {
                Some(o) => (o["metadata"]["uid"].clone(), o["metadata"]["creationTimestamp"].clone()),
                None => (json!(format!("uid-{version}")), json!("2026-01-01T00:00:00Z")),
            };
            applied["metadata"]["uid"] = uid;
            applied["metadata"]["creationTimestamp"] = created;
            applied["metadata"]["resourceVersion"] = json!(version);
            applied["metadata"]["managedFields"] =
                json!([{"manager": manager, "operation": "Apply", "apiVersion": applied["apiVersion"]}]);
            if !ns.is_empty() {
                applied["metadata"]["namespace"] = json!(ns);
            }
            let code = match existing {
                Some(i) => {
                    list[i] = applied.clone();
                    StatusCode::OK
                }
                None => {
                    list.push(applied.clone());
                    StatusCode::CREATED
                }
            };
            (code, [(header::CONTENT_TYPE, "application/json")], applied.to_string()).into_response()
        }
        (Method::DELETE, Some(name)) => {
            let ns = namespace.unwrap_or_default();
            let list = inner.objects.entry(plural.clone()).or_default();
            match list.iter().position(|o| is(o, &ns, &name)) {
                Some(i) => ok(list.remove(i)),
                None => status(StatusCode::NOT_FOUND, "NotFound", format!("{plural} \"{name}\" not found")),
            }
        }
        (Method::PATCH, Some(name)) => {
            if content_type.as_deref() != Some("application/strategic-merge-patch+json") {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", format!("{content_type:?}"));
            }
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON patch".into());
            };
            let ns = namespace.unwrap_or_default();
            let dry_run = query.get("dryRun").map(String::as_str) == Some("All");
            inner.resource_version += 1;
            let version = inner.resource_version.to_string();
            let Some(object) = inner.objects.get_mut(&plural).and_then(|l| l.iter_mut().find(|o| is(o, &ns, &name)))
            else {
                return status(StatusCode::NOT_FOUND, "NotFound", format!("{plural} \"{name}\" not found"));
            };
            let mut patched = object.clone();
            strategic_merge(&mut patched, &patch);
            patched["metadata"]["resourceVersion"] = json!(version);
            if !dry_run {
                *object = patched.clone();
            }
            ok(patched)
        }
        (m, _) => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", format!("{m} not supported")),
    }
}

/// The strategic merge the API server applies for pod templates: maps merge,
/// `containers`/`initContainers` merge by `name`, other lists are replaced.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        *target = patch.clone();
        return;
    };
    for (key, value) in p {
        let by_name = matches!(key.as_str(), "containers" | "initContainers");
        match (t.get_mut(key), value) {
            (Some(Value::Array(list)), Value::Array(items)) if by_name => {
                for item in items {
                    match list.iter_mut().find(|c| c.get("name") == item.get("name")) {
                        Some(existing) => strategic_merge(existing, item),
                        None => list.push(item.clone()),
                    }
                }
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => strategic_merge(existing, value),
            _ => {
                t.insert(key.clone(), value.clone());
            }
        }
    }
}

/// A Deployment as the API server stores it.
pub fn deployment(namespace: &str, name: &str, pod_spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"), "resourceVersion": "1",
            "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}
    })
}

/// A Pod; with `owner`, owned by that ReplicaSet.
pub fn pod(namespace: &str, name: &str, owner: Option<&str>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    });
    if let Some(rs) = owner {
        pod["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "rs-uid", "controller": true}]);
    }
    pod
}
