//! The checks: metadata and pure functions over a [`Workload`].
//!
//! Every rule sees the same typed workload whether it came from a file, a
//! live cluster or an admission request, and returns a verdict with the
//! offending containers and fields. Semantics follow the Kubernetes Pod
//! Security Standards (v1.37); where the seed article was wrong (it demanded
//! `runAsNonRoot` at both pod and container level, and accepted any secret
//! `defaultMode`), the effective value is judged instead.

use std::sync::{Arc, LazyLock};

use compliance_core::{Check, CheckId, CheckSpec, Evidence, ResourceRef, Scope, Severity, Status, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::workload::{ContainerRef, Workload, WorkloadKind};

/// Labels the article requires on Deployments, StatefulSets and DaemonSets.
pub const DEFAULT_REQUIRED_LABELS: [&str; 3] = ["data-classification", "data-retention", "compliance-scope"];

/// Settings of the checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CheckConfig {
    /// Labels `k8s.workload.required_labels` demands.
    pub required_labels: Vec<String>,
    /// Rego policies judged next to the built-in checks (feature `rego`).
    #[cfg(feature = "rego")]
    #[serde(skip)]
    pub policies: std::sync::Arc<crate::rego::RegoPolicies>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            required_labels: DEFAULT_REQUIRED_LABELS.iter().map(|s| (*s).to_owned()).collect(),
            #[cfg(feature = "rego")]
            policies: std::sync::Arc::default(),
        }
    }
}

impl CheckConfig {
    /// Sets the required labels.
    pub fn with_required_labels<I: IntoIterator<Item = S>, S: Into<String>>(mut self, labels: I) -> Self {
        self.required_labels = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the Rego policies judged next to the built-in checks.
    #[cfg(feature = "rego")]
    pub fn with_policies(mut self, policies: crate::rego::RegoPolicies) -> Self {
        self.policies = std::sync::Arc::new(policies);
        self
    }

    /// The built-in checks and, with feature `rego`, the policies' checks.
    pub fn checks(&self) -> Vec<Check> {
        #[allow(unused_mut)]
        let mut all = checks();
        #[cfg(feature = "rego")]
        all.extend(self.policies.checks());
        all
    }
}

type RuleFn = fn(&Workload, &CheckConfig) -> Option<Verdict>;

/// One check and the function that judges it.
pub struct Rule {
    /// Metadata.
    pub check: Check,
    judge: RuleFn,
}

impl Rule {
    /// Judges a workload; `None` when the check produces no evidence for its
    /// kind (labels are only demanded of Deployments, StatefulSets, DaemonSets).
    pub fn judge(&self, workload: &Workload, config: &CheckConfig) -> Option<Verdict> {
        (self.judge)(workload, config)
    }
}

/// One offending field.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Violation {
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    field: String,
    value: Value,
    problem: String,
}

impl Violation {
    fn pod(field: String, value: Value, problem: impl Into<String>) -> Self {
        Self { container: None, field, value, problem: problem.into() }
    }
    fn container(c: &ContainerRef<'_>, suffix: &str, value: Value, problem: impl Into<String>) -> Self {
        Self { container: Some(c.name.to_owned()), field: c.field(suffix), value, problem: problem.into() }
    }
}

/// Pass when no violation, else fail with the violations in the details.
fn verdict(violations: Vec<Violation>, pass: &str, fail: &str) -> Option<Verdict> {
    if violations.is_empty() {
        // Nothing to list: an empty object costs no allocation, and a scan
        // holds hundreds of thousands of these.
        return Some(Verdict { status: Status::Pass, message: pass.to_owned(), details: Value::Object(Map::new()) });
    }
    let mut names: Vec<&str> = violations.iter().filter_map(|v| v.container.as_deref()).collect();
    names.dedup();
    let message = if names.is_empty() { fail.to_owned() } else { format!("{fail}: {}", names.join(", ")) };
    Some(Verdict { status: Status::Fail, message, details: json!({ "violations": violations }) })
}

fn pod_field(w: &Workload, suffix: &str) -> String {
    format!("{}.{}", w.kind.pod_spec_path(), suffix)
}

// ---- the article's four rules ----

fn run_as_non_root(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let pod = w.spec.security_context.as_ref().and_then(|s| s.run_as_non_root);
    let mut violations = Vec::new();
    for c in w.containers() {
        let own = c.security_context.and_then(|s| s.run_as_non_root);
        // Kubernetes applies the container's setting and falls back to the pod's.
        let effective = own.or(pod);
        if effective != Some(true) {
            let problem = match (own, pod) {
                (Some(false), _) => "container sets runAsNonRoot: false".to_owned(),
                (None, Some(false)) => "pod sets runAsNonRoot: false and the container does not override it".to_owned(),
                _ => "runAsNonRoot is set neither on the container nor on the pod".to_owned(),
            };
            violations.push(Violation::container(&c, "securityContext.runAsNonRoot", json!(own), problem));
        }
    }
    let mut v =
        verdict(violations, "every container runs with an effective runAsNonRoot: true", "containers may run as root")?;
    if let Some(obj) = v.details.as_object_mut() {
        obj.insert("pod_run_as_non_root".into(), json!(pod));
    }
    Some(v)
}

fn limit_rule(w: &Workload, resource: &str, what: &str) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter(|c| c.takes_resources())
        .filter(|c| c.resources.and_then(|r| r.limits.as_ref()).and_then(|l| l.get(resource)).is_none())
        .map(|c| {
            Violation::container(&c, &format!("resources.limits.{resource}"), Value::Null, format!("no {what} limit"))
        })
        .collect();
    verdict(violations, &format!("every container sets a {what} limit"), &format!("containers without a {what} limit"))
}

fn memory_limit(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    limit_rule(w, "memory", "memory")
}

fn cpu_limit(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    limit_rule(w, "cpu", "CPU")
}

/// Group write, and any permission for others, expose a secret.
const UNSAFE_MODE_BITS: i32 = 0o027;

fn octal(mode: i32) -> String {
    format!("0{mode:o}")
}

fn secret_default_mode(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let volumes = w.spec.volumes.as_deref().unwrap_or_default();
    let secrets: Vec<_> =
        volumes.iter().enumerate().filter_map(|(i, v)| v.secret.as_ref().map(|s| (i, v, s))).collect();
    if secrets.is_empty() {
        return Some(Verdict {
            status: Status::NotApplicable,
            message: "the workload mounts no secret volume".into(),
            details: json!({ "secret_volumes": 0 }),
        });
    }
    let mut violations = Vec::new();
    for (i, volume, secret) in &secrets {
        let base = pod_field(w, &format!("volumes[{i}].secret"));
        match secret.default_mode {
            None => violations.push(Violation::pod(
                format!("{base}.defaultMode"),
                Value::Null,
                format!("volume {}: defaultMode is not set, so Kubernetes uses 0644 (readable by all)", volume.name),
            )),
            Some(mode) if mode & UNSAFE_MODE_BITS != 0 => violations.push(Violation::pod(
                format!("{base}.defaultMode"),
                json!(octal(mode)),
                format!("volume {}: mode {} gives group write or access to others", volume.name, octal(mode)),
            )),
            Some(_) => {}
        }
        for (j, item) in secret.items.iter().flatten().enumerate() {
            if let Some(mode) = item.mode.filter(|m| m & UNSAFE_MODE_BITS != 0) {
                violations.push(Violation::pod(
                    format!("{base}.items[{j}].mode"),
                    json!(octal(mode)),
                    format!(
                        "volume {} item {}: mode {} gives group write or access to others",
                        volume.name,
                        item.path,
                        octal(mode)
                    ),
                ));
            }
        }
    }
    let mut v =
        verdict(violations, "every secret volume has a restrictive mode", "secret volumes with permissive modes")?;
    if let Some(obj) = v.details.as_object_mut() {
        obj.insert("secret_volumes".into(), json!(secrets.len()));
    }
    Some(v)
}

fn required_labels(w: &Workload, config: &CheckConfig) -> Option<Verdict> {
    if !matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet) {
        return None;
    }
    let missing: Vec<&String> = config.required_labels.iter().filter(|l| !w.labels.contains_key(*l)).collect();
    let details = json!({ "required": config.required_labels, "missing": missing });
    Some(if missing.is_empty() {
        Verdict { status: Status::Pass, message: "all required labels are present".into(), details }
    } else {
        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        Verdict { status: Status::Fail, message: format!("missing required labels: {}", list.join(", ")), details }
    })
}

// ---- Pod Security Standards: baseline ----

fn host_namespaces(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let s = &w.spec;
    let violations = [("hostNetwork", s.host_network), ("hostPID", s.host_pid), ("hostIPC", s.host_ipc)]
        .into_iter()
        .filter(|(_, on)| *on == Some(true))
        .map(|(field, _)| {
            Violation::pod(pod_field(w, field), json!(true), format!("{field} shares the node's namespace"))
        })
        .collect();
    verdict(violations, "the pod shares no host namespace", "the pod shares host namespaces")
}

fn privileged(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter(|c| c.security_context.and_then(|s| s.privileged) == Some(true))
        .map(|c| Violation::container(&c, "securityContext.privileged", json!(true), "privileged container"))
        .collect();
    verdict(violations, "no container is privileged", "privileged containers")
}

const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    for c in w.containers() {
        let added =
            c.security_context.and_then(|s| s.capabilities.as_ref()).and_then(|k| k.add.as_deref()).unwrap_or_default();
        let extra: Vec<&String> = added.iter().filter(|a| !BASELINE_CAPABILITIES.contains(&a.as_str())).collect();
        if !extra.is_empty() {
            violations.push(Violation::container(
                &c,
                "securityContext.capabilities.add",
                json!(extra),
                "adds capabilities beyond the baseline set",
            ));
        }
    }
    verdict(
        violations,
        "no container adds capabilities beyond the baseline set",
        "containers add capabilities beyond the baseline set",
    )
}

fn host_path(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .spec
        .volumes
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| {
            v.host_path.as_ref().map(|h| {
                Violation::pod(
                    pod_field(w, &format!("volumes[{i}].hostPath")),
                    json!(h.path),
                    format!("volume {} mounts a node path", v.name),
                )
            })
        })
        .collect();
    verdict(violations, "no hostPath volume", "hostPath volumes")
}

fn host_ports(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    for c in w.containers() {
        for (i, p) in c.ports.iter().enumerate() {
            if let Some(port) = p.host_port.filter(|p| *p != 0) {
                violations.push(Violation::container(
                    &c,
                    &format!("ports[{i}].hostPort"),
                    json!(port),
                    "binds a port on the node",
                ));
            }
        }
    }
    verdict(violations, "no container binds a host port", "containers bind host ports")
}

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

fn apparmor(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let allowed = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut violations = Vec::new();
    if let Some(t) = w.spec.security_context.as_ref().and_then(|s| s.app_armor_profile.as_ref()).map(|p| &p.type_)
        && !allowed(t)
    {
        violations.push(Violation::pod(
            pod_field(w, "securityContext.appArmorProfile.type"),
            json!(t),
            "AppArmor is disabled",
        ));
    }
    for c in w.containers() {
        if let Some(t) = c.security_context.and_then(|s| s.app_armor_profile.as_ref()).map(|p| &p.type_)
            && !allowed(t)
        {
            violations.push(Violation::container(
                &c,
                "securityContext.appArmorProfile.type",
                json!(t),
                "AppArmor is disabled",
            ));
        }
    }
    for (key, value) in w.pod_annotations.iter().filter(|(k, _)| k.starts_with(APPARMOR_ANNOTATION)) {
        if !(value == "runtime/default" || value.starts_with("localhost/")) {
            violations.push(Violation::pod(
                format!("metadata.annotations[{key}]"),
                json!(value),
                "AppArmor is disabled",
            ));
        }
    }
    verdict(violations, "AppArmor is not disabled", "AppArmor is disabled")
}

const SELINUX_TYPES: [&str; 5] = ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

fn selinux_violations(
    options: Option<&k8s_openapi::api::core::v1::SELinuxOptions>,
    field: &dyn Fn(&str) -> (Option<String>, String),
) -> Vec<Violation> {
    let Some(o) = options else { return Vec::new() };
    let mut out = Vec::new();
    let mut push = |suffix: &str, value: &String, problem: &str| {
        let (container, f) = field(suffix);
        out.push(Violation { container, field: f, value: json!(value), problem: problem.to_owned() });
    };
    if let Some(t) = o.type_.as_ref().filter(|t| !SELINUX_TYPES.contains(&t.as_str())) {
        push("type", t, "SELinux type outside the allowed container types");
    }
    if let Some(u) = &o.user {
        push("user", u, "custom SELinux user");
    }
    if let Some(r) = &o.role {
        push("role", r, "custom SELinux role");
    }
    out
}

fn selinux(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let pod_options = w.spec.security_context.as_ref().and_then(|s| s.se_linux_options.as_ref());
    let mut violations =
        selinux_violations(pod_options, &|s| (None, pod_field(w, &format!("securityContext.seLinuxOptions.{s}"))));
    for c in w.containers() {
        let options = c.security_context.and_then(|s| s.se_linux_options.as_ref());
        violations.extend(selinux_violations(options, &|s| {
            (Some(c.name.to_owned()), c.field(&format!("securityContext.seLinuxOptions.{s}")))
        }));
    }
    verdict(violations, "SELinux options stay within the allowed values", "SELinux options outside the allowed values")
}

fn proc_mount(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter_map(|c| {
            let m = c.security_context.and_then(|s| s.proc_mount.as_deref())?;
            (m != "Default").then(|| Violation::container(&c, "securityContext.procMount", json!(m), "unmasked /proc"))
        })
        .collect();
    verdict(violations, "/proc is masked in every container", "containers unmask /proc")
}

fn seccomp_unconfined(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    if let Some(t) = w.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()).map(|p| &p.type_)
        && t == "Unconfined"
    {
        violations.push(Violation::pod(
            pod_field(w, "securityContext.seccompProfile.type"),
            json!(t),
            "seccomp is disabled",
        ));
    }
    for c in w.containers() {
        if let Some(t) = c.security_context.and_then(|s| s.seccomp_profile.as_ref()).map(|p| &p.type_)
            && t == "Unconfined"
        {
            violations.push(Violation::container(
                &c,
                "securityContext.seccompProfile.type",
                json!(t),
                "seccomp is disabled",
            ));
        }
    }
    verdict(violations, "seccomp is not explicitly disabled", "seccomp is explicitly disabled")
}

const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

fn sysctls(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, s)| !SAFE_SYSCTLS.contains(&s.name.as_str()))
        .map(|(i, s)| {
            Violation::pod(pod_field(w, &format!("securityContext.sysctls[{i}].name")), json!(s.name), "unsafe sysctl")
        })
        .collect();
    verdict(violations, "only safe sysctls are set", "unsafe sysctls")
}

fn host_process(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    if w.spec.security_context.as_ref().and_then(|s| s.windows_options.as_ref()).and_then(|o| o.host_process)
        == Some(true)
    {
        violations.push(Violation::pod(
            pod_field(w, "securityContext.windowsOptions.hostProcess"),
            json!(true),
            "Windows HostProcess pod",
        ));
    }
    for c in w.containers() {
        if c.security_context.and_then(|s| s.windows_options.as_ref()).and_then(|o| o.host_process) == Some(true) {
            violations.push(Violation::container(
                &c,
                "securityContext.windowsOptions.hostProcess",
                json!(true),
                "Windows HostProcess container",
            ));
        }
    }
    verdict(violations, "no Windows HostProcess container", "Windows HostProcess containers")
}

// ---- Pod Security Standards: restricted ----

const RESTRICTED_VOLUME_TYPES: [&str; 8] =
    ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

fn volume_types(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    for (i, volume) in w.spec.volumes.iter().flatten().enumerate() {
        // Serialising names the source whatever its type, including ones
        // added to Kubernetes after this code was written.
        let Ok(Value::Object(fields)) = serde_json::to_value(volume) else { continue };
        for key in fields.keys().filter(|k| *k != "name" && !RESTRICTED_VOLUME_TYPES.contains(&k.as_str())) {
            violations.push(Violation::pod(
                pod_field(w, &format!("volumes[{i}].{key}")),
                json!(key),
                format!("volume {} uses type {key}, outside the restricted set", volume.name),
            ));
        }
    }
    verdict(violations, "every volume type is in the restricted set", "volume types outside the restricted set")
}

fn privilege_escalation(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter_map(|c| {
            let v = c.security_context.and_then(|s| s.allow_privilege_escalation);
            (v != Some(false)).then(|| {
                Violation::container(
                    &c,
                    "securityContext.allowPrivilegeEscalation",
                    json!(v),
                    "allowPrivilegeEscalation is not false",
                )
            })
        })
        .collect();
    verdict(violations, "every container sets allowPrivilegeEscalation: false", "containers may escalate privileges")
}

fn run_as_user(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    if w.spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
        violations.push(Violation::pod(pod_field(w, "securityContext.runAsUser"), json!(0), "pod runs as UID 0"));
    }
    for c in w.containers() {
        if c.security_context.and_then(|s| s.run_as_user) == Some(0) {
            violations.push(Violation::container(&c, "securityContext.runAsUser", json!(0), "container runs as UID 0"));
        }
    }
    verdict(violations, "no runAsUser is 0", "runAsUser 0 (root)")
}

fn seccomp_profile(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let allowed = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let pod = w.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref()).map(|p| p.type_.as_str());
    let mut violations = Vec::new();
    if let Some(t) = pod.filter(|t| !allowed(t)) {
        violations.push(Violation::pod(
            pod_field(w, "securityContext.seccompProfile.type"),
            json!(t),
            "pod seccomp profile is not RuntimeDefault or Localhost",
        ));
    }
    for c in w.containers() {
        let own = c.security_context.and_then(|s| s.seccomp_profile.as_ref()).map(|p| p.type_.as_str());
        match own.or(pod) {
            Some(t) if allowed(t) => {}
            Some(t) if own.is_some() => {
                violations.push(Violation::container(
                    &c,
                    "securityContext.seccompProfile.type",
                    json!(t),
                    "seccomp profile is not RuntimeDefault or Localhost",
                ));
            }
            Some(_) => {} // the pod-level violation is already listed
            None => violations.push(Violation::container(
                &c,
                "securityContext.seccompProfile.type",
                Value::Null,
                "no seccomp profile on the container or the pod",
            )),
        }
    }
    verdict(
        violations,
        "every container runs with a RuntimeDefault or Localhost seccomp profile",
        "containers without a restricted seccomp profile",
    )
}

fn capabilities_drop_all(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    for c in w.containers() {
        let caps = c.security_context.and_then(|s| s.capabilities.as_ref());
        let drops_all = caps.and_then(|k| k.drop.as_deref()).unwrap_or_default().iter().any(|d| d == "ALL");
        if !drops_all {
            violations.push(Violation::container(
                &c,
                "securityContext.capabilities.drop",
                json!(caps.and_then(|k| k.drop.clone())),
                "does not drop ALL capabilities",
            ));
        }
        let extra: Vec<&String> = caps
            .and_then(|k| k.add.as_deref())
            .unwrap_or_default()
            .iter()
            .filter(|a| *a != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            violations.push(Violation::container(
                &c,
                "securityContext.capabilities.add",
                json!(extra),
                "adds capabilities other than NET_BIND_SERVICE",
            ));
        }
    }
    verdict(
        violations,
        "every container drops ALL capabilities and adds at most NET_BIND_SERVICE",
        "containers keep capabilities",
    )
}

// ---- other hardening ----

/// Splits an image reference into (tag, digest).
fn image_parts(image: &str) -> (Option<&str>, Option<&str>) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    (last.split_once(':').map(|(_, t)| t), digest)
}

fn image_latest(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let mut violations = Vec::new();
    for c in w.containers() {
        match c.image.map(image_parts) {
            None => violations.push(Violation::container(&c, "image", Value::Null, "no image")),
            Some((Some("latest"), None)) => {
                violations.push(Violation::container(&c, "image", json!(c.image), "uses the latest tag"))
            }
            Some((None, None)) => {
                violations.push(Violation::container(&c, "image", json!(c.image), "has no tag, so latest is used"))
            }
            Some(_) => {}
        }
    }
    verdict(violations, "every image has a fixed tag or digest", "images float on latest")
}

fn image_digest(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter(|c| c.image.map(image_parts).and_then(|(_, d)| d).is_none())
        .map(|c| Violation::container(&c, "image", json!(c.image), "not pinned by digest"))
        .collect();
    verdict(violations, "every image is pinned by digest", "images not pinned by digest")
}

fn read_only_root_filesystem(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter(|c| c.takes_resources())
        .filter_map(|c| {
            let v = c.security_context.and_then(|s| s.read_only_root_filesystem);
            (v != Some(true)).then(|| {
                Violation::container(
                    &c,
                    "securityContext.readOnlyRootFilesystem",
                    json!(v),
                    "root filesystem is writable",
                )
            })
        })
        .collect();
    verdict(violations, "every container has a read-only root filesystem", "containers with a writable root filesystem")
}

// ---- the catalogue ----

const SPECS: &[(CheckSpec, RuleFn)] = &[
    (
        CheckSpec {
            id: "k8s.pod.run_as_non_root",
            title: "Containers run as non-root",
            severity: Severity::High,
            rationale: "A process running as root in a container is root on the node once it escapes the container.",
            remediation: "Set securityContext.runAsNonRoot: true on the pod (or on every container) and run the image as a non-zero UID.",
            reference: "Pod Security Standards, restricted: Running as Non-root",
            remediable: true,
            resource_kind: "Workload",
        },
        run_as_non_root,
    ),
    (
        CheckSpec {
            id: "k8s.container.memory_limit",
            title: "Containers set a memory limit",
            severity: Severity::Medium,
            rationale: "Without a memory limit one container can exhaust the node's memory and starve its neighbours.",
            remediation: "Set resources.limits.memory on every container and init container.",
            reference: "",
            remediable: true,
            resource_kind: "Workload",
        },
        memory_limit,
    ),
    (
        CheckSpec {
            id: "k8s.volume.secret_default_mode",
            title: "Secret volumes have restrictive file modes",
            severity: Severity::Medium,
            rationale: "Kubernetes mounts secret files 0644 by default: readable by every user in the container.",
            remediation: "Set defaultMode (and any items[].mode) on secret volumes to 0400 or 0440.",
            reference: "",
            remediable: false,
            resource_kind: "Workload",
        },
        secret_default_mode,
    ),
    (
        CheckSpec {
            id: "k8s.workload.required_labels",
            title: "Workloads carry the compliance labels",
            severity: Severity::Low,
            rationale: "Data classification, retention and scope labels let audits and policies find what handles which data.",
            remediation: "Add the labels data-classification, data-retention and compliance-scope to metadata.labels.",
            reference: "",
            remediable: false,
            resource_kind: "Workload",
        },
        required_labels,
    ),
    (
        CheckSpec {
            id: "k8s.container.privileged",
            title: "No privileged containers",
            severity: Severity::Critical,
            rationale: "A privileged container has every capability and the node's devices: it is root on the node.",
            remediation: "Remove securityContext.privileged or set it to false.",
            reference: "Pod Security Standards, baseline: Privileged Containers",
            remediable: false,
            resource_kind: "Workload",
        },
        privileged,
    ),
    (
        CheckSpec {
            id: "k8s.pod.host_namespaces",
            title: "Pods do not share host namespaces",
            severity: Severity::High,
            rationale: "Sharing the node's network, PID or IPC namespace exposes the node's processes and traffic.",
            remediation: "Remove hostNetwork, hostPID and hostIPC or set them to false.",
            reference: "Pod Security Standards, baseline: Host Namespaces",
            remediable: false,
            resource_kind: "Workload",
        },
        host_namespaces,
    ),
    (
        CheckSpec {
            id: "k8s.volume.host_path",
            title: "No hostPath volumes",
            severity: Severity::High,
            rationale: "A hostPath volume exposes the node's file system to the container.",
            remediation: "Replace hostPath volumes with persistent volume claims, configMaps or emptyDir.",
            reference: "Pod Security Standards, baseline: HostPath Volumes",
            remediable: false,
            resource_kind: "Workload",
        },
        host_path,
    ),
    (
        CheckSpec {
            id: "k8s.container.host_ports",
            title: "Containers do not bind host ports",
            severity: Severity::Medium,
            rationale: "Host ports bypass network policy and tie the pod to a node.",
            remediation: "Remove hostPort from container ports; expose the pod through a Service.",
            reference: "Pod Security Standards, baseline: Host Ports",
            remediable: false,
            resource_kind: "Workload",
        },
        host_ports,
    ),
    (
        CheckSpec {
            id: "k8s.container.added_capabilities",
            title: "Containers add no capability beyond the baseline set",
            severity: Severity::High,
            rationale: "Capabilities such as SYS_ADMIN or NET_ADMIN give near-root power over the node.",
            remediation: "Remove capabilities outside the baseline set from securityContext.capabilities.add.",
            reference: "Pod Security Standards, baseline: Capabilities",
            remediable: false,
            resource_kind: "Workload",
        },
        added_capabilities,
    ),
    (
        CheckSpec {
            id: "k8s.pod.apparmor",
            title: "AppArmor is not disabled",
            severity: Severity::Medium,
            rationale: "An Unconfined AppArmor profile removes a layer of confinement.",
            remediation: "Use appArmorProfile.type RuntimeDefault or Localhost, or leave it unset.",
            reference: "Pod Security Standards, baseline: AppArmor",
            remediable: false,
            resource_kind: "Workload",
        },
        apparmor,
    ),
    (
        CheckSpec {
            id: "k8s.pod.selinux",
            title: "SELinux options stay within the allowed values",
            severity: Severity::Medium,
            rationale: "A custom SELinux user, role or type can lift the container's confinement.",
            remediation: "Leave seLinuxOptions.user and role unset and type empty or one of container_t, container_init_t, container_kvm_t, container_engine_t.",
            reference: "Pod Security Standards, baseline: SELinux",
            remediable: false,
            resource_kind: "Workload",
        },
        selinux,
    ),
    (
        CheckSpec {
            id: "k8s.container.proc_mount",
            title: "/proc is masked",
            severity: Severity::Medium,
            rationale: "An unmasked /proc exposes kernel interfaces to the container.",
            remediation: "Remove securityContext.procMount or set it to Default.",
            reference: "Pod Security Standards, baseline: /proc Mount Type",
            remediable: false,
            resource_kind: "Workload",
        },
        proc_mount,
    ),
    (
        CheckSpec {
            id: "k8s.pod.seccomp_unconfined",
            title: "Seccomp is not disabled",
            severity: Severity::Medium,
            rationale: "An Unconfined seccomp profile lets the container call every system call of the kernel.",
            remediation: "Use seccompProfile.type RuntimeDefault or Localhost.",
            reference: "Pod Security Standards, baseline: Seccomp",
            remediable: false,
            resource_kind: "Workload",
        },
        seccomp_unconfined,
    ),
    (
        CheckSpec {
            id: "k8s.pod.sysctls",
            title: "Only safe sysctls are set",
            severity: Severity::Medium,
            rationale: "Unsafe sysctls change kernel settings shared with other pods on the node.",
            remediation: "Remove sysctls outside the safe set from securityContext.sysctls.",
            reference: "Pod Security Standards, baseline: Sysctls",
            remediable: false,
            resource_kind: "Workload",
        },
        sysctls,
    ),
    (
        CheckSpec {
            id: "k8s.pod.host_process",
            title: "No Windows HostProcess containers",
            severity: Severity::Critical,
            rationale: "A HostProcess container runs directly on the Windows node with its privileges.",
            remediation: "Remove windowsOptions.hostProcess or set it to false.",
            reference: "Pod Security Standards, baseline: HostProcess",
            remediable: false,
            resource_kind: "Workload",
        },
        host_process,
    ),
    (
        CheckSpec {
            id: "k8s.volume.types",
            title: "Only restricted volume types",
            severity: Severity::Low,
            rationale: "Volume types outside the restricted set reach node or network storage directly.",
            remediation: "Use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret volumes.",
            reference: "Pod Security Standards, restricted: Volume Types",
            remediable: false,
            resource_kind: "Workload",
        },
        volume_types,
    ),
    (
        CheckSpec {
            id: "k8s.container.privilege_escalation",
            title: "Containers forbid privilege escalation",
            severity: Severity::High,
            rationale: "Without allowPrivilegeEscalation: false, setuid binaries can gain more privileges than the process started with.",
            remediation: "Set securityContext.allowPrivilegeEscalation: false on every container.",
            reference: "Pod Security Standards, restricted: Privilege Escalation",
            remediable: true,
            resource_kind: "Workload",
        },
        privilege_escalation,
    ),
    (
        CheckSpec {
            id: "k8s.pod.run_as_user",
            title: "No container runs as UID 0",
            severity: Severity::High,
            rationale: "runAsUser: 0 runs the process as root whatever the image says.",
            remediation: "Set runAsUser to a non-zero UID, or remove it and rely on runAsNonRoot.",
            reference: "Pod Security Standards, restricted: Running as Non-root user",
            remediable: true,
            resource_kind: "Workload",
        },
        run_as_user,
    ),
    (
        CheckSpec {
            id: "k8s.pod.seccomp_profile",
            title: "Containers run with a restricted seccomp profile",
            severity: Severity::Medium,
            rationale: "The RuntimeDefault profile blocks system calls that containers do not need.",
            remediation: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
            reference: "Pod Security Standards, restricted: Seccomp",
            remediable: false,
            resource_kind: "Workload",
        },
        seccomp_profile,
    ),
    (
        CheckSpec {
            id: "k8s.container.capabilities_drop_all",
            title: "Containers drop all capabilities",
            severity: Severity::Medium,
            rationale: "Dropping ALL and adding back at most NET_BIND_SERVICE leaves a compromised process the least power.",
            remediation: "Set securityContext.capabilities.drop: [ALL]; add only NET_BIND_SERVICE if needed.",
            reference: "Pod Security Standards, restricted: Capabilities",
            remediable: false,
            resource_kind: "Workload",
        },
        capabilities_drop_all,
    ),
    (
        CheckSpec {
            id: "k8s.container.cpu_limit",
            title: "Containers set a CPU limit",
            severity: Severity::Low,
            rationale: "Without a CPU limit one container can starve its neighbours of CPU time.",
            remediation: "Set resources.limits.cpu on every container and init container.",
            reference: "",
            remediable: true,
            resource_kind: "Workload",
        },
        cpu_limit,
    ),
    (
        CheckSpec {
            id: "k8s.container.image_latest",
            title: "Images have a fixed tag",
            severity: Severity::Medium,
            rationale: "An image on latest (or with no tag) changes under a running workload without review.",
            remediation: "Use an explicit version tag or a digest.",
            reference: "",
            remediable: false,
            resource_kind: "Workload",
        },
        image_latest,
    ),
    (
        CheckSpec {
            id: "k8s.container.image_digest",
            title: "Images are pinned by digest",
            severity: Severity::Low,
            rationale: "A tag can be moved to other content; a digest cannot.",
            remediation: "Reference images as name@sha256:<digest>.",
            reference: "",
            remediable: false,
            resource_kind: "Workload",
        },
        image_digest,
    ),
    (
        CheckSpec {
            id: "k8s.container.read_only_root_filesystem",
            title: "Root filesystems are read-only",
            severity: Severity::Medium,
            rationale: "A writable root filesystem lets an intruder change binaries and persist in the container.",
            remediation: "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where the application writes.",
            reference: "",
            remediable: true,
            resource_kind: "Workload",
        },
        read_only_root_filesystem,
    ),
];

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    // The ids above are literals covered by a test; a malformed one would be
    // dropped here, and that test would fail.
    SPECS.iter().filter_map(|(spec, judge)| Some(Rule { check: spec.to_check().ok()?, judge: *judge })).collect()
});

/// Every Kubernetes rule, in catalogue order.
pub fn rules() -> &'static [Rule] {
    &RULES
}

/// The metadata of every Kubernetes check.
///
/// ```
/// let checks = compliance_k8s::checks();
/// assert!(checks.iter().any(|c| c.id.as_str() == "k8s.pod.run_as_non_root"));
/// ```
pub fn checks() -> Vec<Check> {
    rules().iter().map(|r| r.check.clone()).collect()
}

/// The rule for one check id.
pub fn rule(id: &CheckId) -> Option<&'static Rule> {
    rules().iter().find(|r| &r.check.id == id)
}

/// Judges one workload with every rule in `scope`: one evidence per check.
///
/// ```
/// use compliance_core::{ResourceRef, Scope, Status};
/// use compliance_k8s::{CheckConfig, Workload, evaluate};
/// let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
///     "spec": {"securityContext": {"runAsNonRoot": true},
///              "containers": [{"name": "web", "image": "nginx:1.27"}]}});
/// let workload = Workload::from_object(pod)?.expect("a Pod");
/// let resource = ResourceRef::new("k8s", "Pod", "pod.yaml#0/Pod/web", "web");
/// let evidence = evaluate(&workload, resource, &CheckConfig::default(), &Scope::only(["k8s.pod.run_as_non_root"]));
/// assert_eq!(evidence.len(), 1);
/// assert_eq!(evidence[0].status, Status::Pass); // the pod-level setting applies to the container
/// # Ok::<(), compliance_k8s::WorkloadError>(())
/// ```
pub fn evaluate(
    workload: &Workload,
    resource: impl Into<Arc<ResourceRef>>,
    config: &CheckConfig,
    scope: &Scope,
) -> Vec<Evidence> {
    let now = chrono::Utc::now();
    let resource = resource.into();
    rules()
        .iter()
        .filter(|r| scope.wants(&r.check.id))
        .filter_map(|r| {
            let v = r.judge(workload, config)?;
            Some(
                Evidence::new(&r.check, resource.clone(), v.status, v.message).with_details(v.details).observed_at(now),
            )
        })
        .collect()
}

/// `Error` evidence for every rule in `scope` that would have judged an
/// object that could not be read: an evidence gap on a known resource.
pub fn unreadable(
    kind: WorkloadKind,
    resource: impl Into<Arc<ResourceRef>>,
    reason: &str,
    scope: &Scope,
) -> Vec<Evidence> {
    let now = chrono::Utc::now();
    let resource = resource.into();
    let applies = |r: &&Rule| {
        r.check.id.as_str() != "k8s.workload.required_labels"
            || matches!(kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)
    };
    rules()
        .iter()
        .filter(|r| scope.wants(&r.check.id))
        .filter(applies)
        .map(|r| {
            Evidence::new(&r.check, Arc::clone(&resource), Status::Error, format!("could not be judged: {reason}"))
                .with_details(json!({ "reason": reason }))
                .observed_at(now)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_ids_are_valid_and_unique() {
        assert_eq!(rules().len(), SPECS.len(), "a malformed check id was dropped");
        let mut ids: Vec<&str> = SPECS.iter().map(|(s, _)| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SPECS.len());
    }

    #[test]
    fn image_references() {
        assert_eq!(image_parts("nginx"), (None, None));
        assert_eq!(image_parts("nginx:1.27"), (Some("1.27"), None));
        assert_eq!(image_parts("registry:5000/team/app"), (None, None));
        assert_eq!(image_parts("registry:5000/team/app:latest"), (Some("latest"), None));
        assert_eq!(image_parts("app@sha256:abc"), (None, Some("sha256:abc")));
        assert_eq!(image_parts("app:1@sha256:abc"), (Some("1"), Some("sha256:abc")));
    }
}
