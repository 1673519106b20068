//! Hardening beyond the Pod Security Standards: pinned images, read-only
//! root filesystems, and no service account token for pods that do not
//! call the API.

use compliance_core::{Status, Verdict};
use serde_json::{Value, json};

use super::{Violation, verdict};
use crate::config::CheckConfig;
use crate::workload::Workload;

/// Splits an image reference into (tag, digest).
pub(super) fn image_parts(image: &str) -> (Option<&str>, Option<&str>) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    (last.split_once(':').map(|(_, t)| t), digest)
}

pub(super) fn image_latest(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

pub(super) fn image_digest(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let violations = w
        .containers()
        .filter(|c| c.image.map(image_parts).and_then(|(_, d)| d).is_none())
        .map(|c| Violation::container(&c, "image", json!(c.image), "not pinned by digest"))
        .collect();
    verdict(violations, "every image is pinned by digest", "images not pinned by digest")
}

pub(super) fn read_only_root_filesystem(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
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

/// Service accounts created for API access are named; a pod left on its
/// namespace's `default` account is presumed not to call the API.
pub(super) fn service_account_token(w: &Workload, _: &CheckConfig) -> Option<Verdict> {
    let s = &w.spec;
    let account = s
        .service_account_name
        .as_deref()
        .or(s.service_account.as_deref())
        .filter(|a| !a.is_empty())
        .unwrap_or("default");
    let automount = s.automount_service_account_token;
    let details = json!({ "service_account": account, "automount_service_account_token": automount });
    Some(match (account, automount) {
        (_, Some(false)) => Verdict::new(Status::Pass, "no service account token is mounted", details),
        ("default", _) => Verdict::new(
            Status::Fail,
            format!(
                "the pod runs as the default service account and {}: every process in it can call the API",
                if automount == Some(true) {
                    "mounts its token"
                } else {
                    "does not set automountServiceAccountToken: false"
                }
            ),
            json!({
                "violations": [{ "field": super::pod_field(w, "automountServiceAccountToken"), "value": automount,
                                 "problem": "the default service account's token is mounted" }],
                "service_account": account,
            }),
        ),
        (named, _) => Verdict::new(
            Status::NotApplicable,
            format!("the pod runs as service account {named}, which is presumed to need the API"),
            details,
        ),
    })
}
