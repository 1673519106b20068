//! The Kubernetes checks: pure functions over a [`Workload`], and the
//! catalogue that binds each to its metadata.
//!
//! Every rule sees the same typed workload whether it came from a file, a
//! live cluster or an admission request, and returns a verdict with the
//! offending containers and fields. Semantics follow the Kubernetes Pod
//! Security Standards (v1.37). Where the blog post this project grew from
//! judged a setting too strictly or too loosely, the effective value is
//! judged instead (ARCHITECTURE.md, "Where the rules come from").
//!
//! - `article`: run as non-root, memory and CPU limits, secret file modes,
//!   required labels.
//! - `pss`: the Pod Security Standards, one rule per control.
//! - `hardening`: pinned images, read-only root filesystems, service
//!   account tokens.
//! - `catalogue`: the entries.

mod article;
mod catalogue;
mod hardening;
mod pss;

use std::sync::{Arc, LazyLock};

use compliance_core::catalogue::{Catalogue, Entry};
use compliance_core::{Check, CheckId, Evidence, ResourceRef, Scope, Status, Verdict};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::CheckConfig;
use crate::workload::{ContainerRef, Workload, WorkloadKind};

/// One check of the catalogue and its judge.
pub type Rule = Entry<Workload, CheckConfig>;

static CATALOGUE: LazyLock<Catalogue<Workload, CheckConfig>> = LazyLock::new(|| Catalogue::new(catalogue::DEFS));

/// The Kubernetes catalogue.
pub fn catalogue() -> &'static Catalogue<Workload, CheckConfig> {
    &CATALOGUE
}

/// Every Kubernetes rule, in catalogue order.
pub fn rules() -> &'static [Rule] {
    CATALOGUE.entries()
}

/// The metadata of every Kubernetes check.
///
/// ```
/// let checks = compliance_k8s::checks();
/// assert!(checks.iter().any(|c| c.id.as_str() == "k8s.pod.run_as_non_root"));
/// ```
pub fn checks() -> Vec<Check> {
    CATALOGUE.checks()
}

/// The rule for one check id.
pub fn rule(id: &CheckId) -> Option<&'static Rule> {
    CATALOGUE.get(id)
}

/// One offending field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Violation {
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    field: String,
    value: Value,
    problem: String,
}

impl Violation {
    pub(crate) fn pod(field: String, value: Value, problem: impl Into<String>) -> Self {
        Self { container: None, field, value, problem: problem.into() }
    }
    pub(crate) fn container(c: &ContainerRef<'_>, suffix: &str, value: Value, problem: impl Into<String>) -> Self {
        Self { container: Some(c.name.to_owned()), field: c.field(suffix), value, problem: problem.into() }
    }
}

/// Pass when no violation, else fail with the violations in the details.
pub(crate) fn verdict(violations: Vec<Violation>, pass: &str, fail: &str) -> Option<Verdict> {
    if violations.is_empty() {
        // Nothing to list: an empty object costs no allocation, and a scan
        // holds hundreds of thousands of these.
        return Some(Verdict { status: Status::Pass, message: pass.to_owned(), details: Value::Object(Map::new()) });
    }
    let mut names: Vec<&str> = violations.iter().filter_map(|v| v.container.as_deref()).collect();
    names.dedup();
    let message = match names.len() {
        0 => fail.to_owned(),
        n if n <= MAX_NAMES => format!("{fail}: {}", names.join(", ")),
        n => format!("{fail}: {} and {} more", names[..MAX_NAMES].join(", "), n - MAX_NAMES),
    };
    // The details list the first violations and count the rest: a pod of
    // 100,000 containers must not make a message or a report of megabytes.
    let total = violations.len();
    let details = if total <= MAX_VIOLATIONS {
        json!({ "violations": violations })
    } else {
        let listed: Vec<&Violation> = violations.iter().take(MAX_VIOLATIONS).collect();
        json!({ "violations": listed, "violations_total": total, "violations_not_listed": total - MAX_VIOLATIONS })
    };
    Some(Verdict { status: Status::Fail, message, details })
}

/// Container names a failure message lists before it counts the rest.
const MAX_NAMES: usize = 10;
/// Violations a verdict's details list before they count the rest.
const MAX_VIOLATIONS: usize = 100;

pub(crate) fn pod_field(w: &Workload, suffix: &str) -> String {
    format!("{}.{}", w.kind.pod_spec_path(), suffix)
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
    CATALOGUE.judge(workload, config, resource, scope, chrono::Utc::now())
}

/// `Error` evidence for every rule in `scope` that would have judged an
/// object that could not be read: an evidence gap on a known resource.
pub fn unreadable(
    kind: WorkloadKind,
    resource: impl Into<Arc<ResourceRef>>,
    reason: &str,
    scope: &Scope,
) -> Vec<Evidence> {
    // Labels are demanded of controllers only.
    let labels_apply = matches!(kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet);
    CATALOGUE.unreadable(resource, reason, scope, chrono::Utc::now(), |check| {
        labels_apply || check.id.as_str() != "k8s.workload.required_labels"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_of_many_containers_gets_a_bounded_message_and_details() -> Result<(), Box<dyn std::error::Error>> {
        let containers: Vec<Value> = (0..5_000).map(|i| json!({ "name": format!("c{i}"), "image": "x:1" })).collect();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wide"}, "spec": {"containers": containers}});
        let workload = Workload::from_object(pod)?.ok_or("a pod")?;
        let resource = ResourceRef::new("k8s", "Pod", "wide", "wide");
        let e = evaluate(&workload, resource, &CheckConfig::default(), &Scope::only(["k8s.container.memory_limit"]));
        assert_eq!(e[0].status, Status::Fail);
        assert!(e[0].message.ends_with("c9 and 4990 more"), "{}", e[0].message);
        assert!(e[0].message.len() < 200);
        assert_eq!(e[0].details["violations"].as_array().map(Vec::len), Some(100));
        assert_eq!(e[0].details["violations_total"], 5_000);
        Ok(())
    }

    #[test]
    fn catalogue_ids_are_valid_and_unique() {
        assert!(catalogue().problems().is_empty(), "{:?}", catalogue().problems());
        assert_eq!(rules().len(), catalogue::DEFS.len());
    }

    #[test]
    fn image_references() {
        assert_eq!(hardening::image_parts("nginx"), (None, None));
        assert_eq!(hardening::image_parts("nginx:1.27"), (Some("1.27"), None));
        assert_eq!(hardening::image_parts("registry:5000/team/app"), (None, None));
        assert_eq!(hardening::image_parts("registry:5000/team/app:latest"), (Some("latest"), None));
        assert_eq!(hardening::image_parts("app@sha256:abc"), (None, Some("sha256:abc")));
        assert_eq!(hardening::image_parts("app:1@sha256:abc"), (Some("1"), Some("sha256:abc")));
    }
}
