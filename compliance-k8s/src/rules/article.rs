//! The blog post's four rules, judged on the effective values (see
//! ARCHITECTURE.md, "Where the rules come from"), and the CPU limit beside
//! the memory one.

use compliance_core::{Status, Verdict};
use serde_json::{Value, json};

use super::{Violation, pod_field, verdict};
use crate::config::CheckConfig;
use crate::workload::{Workload, WorkloadKind};

pub(super) fn run_as_non_root(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn memory_limit(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    limit_rule(w, "memory", "memory")
}

pub(super) fn cpu_limit(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    limit_rule(w, "cpu", "CPU")
}

/// Group write, and any permission for others, expose a secret.
const UNSAFE_MODE_BITS: i32 = 0o027;

fn octal(mode: i32) -> String {
    format!("0{mode:o}")
}

pub(super) fn secret_default_mode(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn required_labels(w: &Workload, config: &CheckConfig) -> Option<Verdict> {
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
