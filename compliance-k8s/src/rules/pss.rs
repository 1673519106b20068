//! The Pod Security Standards (v1.37), baseline and restricted profiles:
//! one rule per control.

use compliance_core::Verdict;
use serde_json::{Value, json};

use super::{Violation, pod_field, verdict};
use crate::config::CheckConfig;
use crate::workload::Workload;

// ---- Pod Security Standards: baseline ----

pub(super) fn host_namespaces(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn privileged(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn added_capabilities(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn host_path(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn host_ports(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn apparmor(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn selinux(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn proc_mount(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter_map(|c| {
            let m = c.security_context.and_then(|s| s.proc_mount.as_deref())?;
            (m != "Default").then(|| Violation::container(&c, "securityContext.procMount", json!(m), "unmasked /proc"))
        })
        .collect();
    verdict(violations, "/proc is masked in every container", "containers unmask /proc")
}

pub(super) fn seccomp_unconfined(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn sysctls(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn host_process(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn volume_types(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn privilege_escalation(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn run_as_user(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn seccomp_profile(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn capabilities_drop_all(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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
