//! The minimal strategic-merge patch of a pod spec that fixes one check.

use compliance_core::{Change, CheckId, Risk};
use k8s_openapi::api::core::v1::SecurityContext;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::workload::{ContainerGroup, ContainerRef, Workload};

/// Values a fix sets where they are missing or wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct FixDefaults {
    /// `runAsUser` for pods and containers that would run as root.
    pub run_as_user: i64,
    /// Pod `fsGroup`, so that a non-root process can still write its volumes.
    pub fs_group: i64,
    /// `resources.limits.memory` where missing.
    pub memory_limit: String,
    /// `resources.limits.cpu` where missing.
    pub cpu_limit: String,
}

impl Default for FixDefaults {
    fn default() -> Self {
        Self { run_as_user: 10001, fs_group: 20001, memory_limit: "512Mi".into(), cpu_limit: "500m".into() }
    }
}

impl FixDefaults {
    /// Sets the user id.
    pub fn with_run_as_user(mut self, uid: i64) -> Self {
        self.run_as_user = uid;
        self
    }

    /// Sets the pod fsGroup.
    pub fn with_fs_group(mut self, gid: i64) -> Self {
        self.fs_group = gid;
        self
    }

    /// Sets the memory limit.
    pub fn with_memory_limit(mut self, limit: impl Into<String>) -> Self {
        self.memory_limit = limit.into();
        self
    }

    /// Sets the CPU limit.
    pub fn with_cpu_limit(mut self, limit: impl Into<String>) -> Self {
        self.cpu_limit = limit.into();
        self
    }
}

/// True when a patch fixes `check`: the catalogue's `remediable` flag
/// decides, and a test asserts that [`plan_patch`] fixes exactly those.
pub(crate) fn fixable(check: &CheckId) -> bool {
    crate::rules::rule(check).is_some_and(|r| r.check().remediable)
}

/// How risky the fix of a check is: changing the user or making the root
/// filesystem read-only can stop an application from starting.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the live remediator uses it; tests always do
pub(crate) fn risk_of(check: &CheckId) -> Risk {
    match check.as_str() {
        "k8s.pod.run_as_non_root" | "k8s.pod.run_as_user" | "k8s.container.read_only_root_filesystem" => Risk::High,
        _ => Risk::Medium,
    }
}

/// A patch of the pod spec under construction, with its changes.
struct PodPatch<'a> {
    workload: &'a Workload,
    pod: Map<String, Value>,
    containers: [Vec<(String, Map<String, Value>)>; 2],
    changes: Vec<Change>,
    operation: String,
}

impl<'a> PodPatch<'a> {
    fn new(workload: &'a Workload, operation: String) -> Self {
        Self { workload, pod: Map::new(), containers: [Vec::new(), Vec::new()], changes: Vec::new(), operation }
    }

    fn set_pod(&mut self, section: &str, field: &str, before: Value, after: Value) {
        let target = format!("{}.{section}.{field}", self.workload.kind.pod_spec_path());
        let entry = self.pod.entry(section).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(field.to_owned(), after.clone());
        }
        self.changes.push(Change::new(&self.operation, target, before, after));
    }

    /// Sets `path` (dot-separated) in container `name` of `group`.
    fn set_container(
        &mut self,
        group: ContainerGroup,
        index: usize,
        name: &str,
        path: &[&str],
        before: Value,
        after: Value,
    ) {
        let slot = match group {
            ContainerGroup::Containers => 0,
            ContainerGroup::InitContainers => 1,
            ContainerGroup::EphemeralContainers => return,
        };
        let target = format!("{}.{}[{index}].{}", self.workload.kind.pod_spec_path(), group.field(), path.join("."));
        let list = &mut self.containers[slot];
        let position = match list.iter().position(|(n, _)| n == name) {
            Some(p) => p,
            None => {
                list.push((name.to_owned(), Map::new()));
                list.len() - 1
            }
        };
        let mut node = &mut list[position].1;
        for step in &path[..path.len() - 1] {
            let next = node.entry(*step).or_insert_with(|| json!({}));
            let Some(obj) = next.as_object_mut() else { return };
            node = obj;
        }
        if let Some(last) = path.last() {
            node.insert((*last).to_owned(), after.clone());
        }
        self.changes.push(Change::new(&self.operation, target, before, after));
    }

    /// Sets `securityContext.<field>` to `wanted` in every container where
    /// it is anything else (unset included).
    fn require_flag(
        &mut self,
        containers: &[ContainerRef<'_>],
        field: &str,
        read: fn(&SecurityContext) -> Option<bool>,
        wanted: bool,
    ) {
        for c in containers {
            let current = c.security_context.and_then(read);
            if current != Some(wanted) {
                self.set_container(
                    c.group,
                    c.index,
                    c.name,
                    &["securityContext", field],
                    json!(current),
                    json!(wanted),
                );
            }
        }
    }

    fn finish(self) -> Option<(Value, Vec<Change>)> {
        if self.changes.is_empty() {
            return None;
        }
        let mut spec = self.pod;
        for (slot, field) in [(0, "containers"), (1, "initContainers")] {
            if !self.containers[slot].is_empty() {
                let items: Vec<Value> = self.containers[slot]
                    .iter()
                    .map(|(name, patch)| {
                        let mut item = patch.clone();
                        item.insert("name".into(), json!(name));
                        Value::Object(item)
                    })
                    .collect();
                spec.insert(field.into(), Value::Array(items));
            }
        }
        Some((Value::Object(spec), self.changes))
    }
}

/// Plans the minimal patch of the pod spec that fixes `check` on `workload`:
/// only fields that are missing or wrong, containers matched by name (the
/// strategic-merge key). Returns the pod-spec patch and the changes, or
/// `None` when the check is not fixable or nothing needs to change.
///
/// ```
/// use compliance_k8s::{FixDefaults, Workload, plan_patch};
/// let object = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
///     "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
/// let workload = Workload::from_object(object)?.expect("a Deployment");
/// let (patch, changes) = plan_patch(&workload, &"k8s.container.memory_limit".parse()?, &FixDefaults::default(), "PATCH")
///     .expect("a fix");
/// assert_eq!(patch, serde_json::json!({"containers": [{"name": "web", "resources": {"limits": {"memory": "512Mi"}}}]}));
/// assert_eq!(changes[0].target, "spec.template.spec.containers[0].resources.limits.memory");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_patch(
    workload: &Workload,
    check: &CheckId,
    defaults: &FixDefaults,
    operation: &str,
) -> Option<(Value, Vec<Change>)> {
    let mut patch = PodPatch::new(workload, operation.to_owned());
    let pod_sc = workload.spec.security_context.as_ref();
    // Templates cannot hold ephemeral containers; they are not patched.
    let containers: Vec<_> = workload.containers().filter(|c| c.takes_resources()).collect();
    match check.as_str() {
        "k8s.pod.run_as_non_root" => {
            let pod_value = pod_sc.and_then(|s| s.run_as_non_root);
            if pod_value != Some(true) {
                patch.set_pod("securityContext", "runAsNonRoot", json!(pod_value), json!(true));
            }
            let pod_user = pod_sc.and_then(|s| s.run_as_user);
            if pod_user.is_none_or(|u| u == 0) {
                patch.set_pod("securityContext", "runAsUser", json!(pod_user), json!(defaults.run_as_user));
            }
            if pod_sc.and_then(|s| s.fs_group).is_none() {
                patch.set_pod("securityContext", "fsGroup", Value::Null, json!(defaults.fs_group));
            }
            for c in &containers {
                let sc = c.security_context;
                if sc.and_then(|s| s.run_as_non_root) == Some(false) {
                    patch.set_container(
                        c.group,
                        c.index,
                        c.name,
                        &["securityContext", "runAsNonRoot"],
                        json!(false),
                        json!(true),
                    );
                }
                if sc.and_then(|s| s.run_as_user) == Some(0) {
                    patch.set_container(
                        c.group,
                        c.index,
                        c.name,
                        &["securityContext", "runAsUser"],
                        json!(0),
                        json!(defaults.run_as_user),
                    );
                }
            }
        }
        "k8s.pod.run_as_user" => {
            if pod_sc.and_then(|s| s.run_as_user) == Some(0) {
                patch.set_pod("securityContext", "runAsUser", json!(0), json!(defaults.run_as_user));
            }
            for c in containers.iter().filter(|c| c.security_context.and_then(|s| s.run_as_user) == Some(0)) {
                patch.set_container(
                    c.group,
                    c.index,
                    c.name,
                    &["securityContext", "runAsUser"],
                    json!(0),
                    json!(defaults.run_as_user),
                );
            }
        }
        "k8s.container.memory_limit" | "k8s.container.cpu_limit" => {
            let (resource, value) = if check.as_str() == "k8s.container.memory_limit" {
                ("memory", &defaults.memory_limit)
            } else {
                ("cpu", &defaults.cpu_limit)
            };
            for c in containers
                .iter()
                .filter(|c| c.resources.and_then(|r| r.limits.as_ref()).and_then(|l| l.get(resource)).is_none())
            {
                patch.set_container(
                    c.group,
                    c.index,
                    c.name,
                    &["resources", "limits", resource],
                    Value::Null,
                    json!(value),
                );
            }
        }
        "k8s.container.privilege_escalation" => {
            patch.require_flag(&containers, "allowPrivilegeEscalation", |s| s.allow_privilege_escalation, false);
        }
        "k8s.container.read_only_root_filesystem" => {
            patch.require_flag(&containers, "readOnlyRootFilesystem", |s| s.read_only_root_filesystem, true);
        }
        _ => return None,
    }
    patch.finish()
}

/// Wraps a pod-spec patch at the template's place in the object.
pub(crate) fn wrap_for_object(workload: &Workload, pod_spec_patch: Value) -> Value {
    let mut patch = json!({ "spec": pod_spec_patch });
    for step in workload.kind.template_path().iter().rev() {
        patch = json!({ *step: patch });
    }
    patch
}

/// Applies a strategic-merge patch locally: objects merge, `containers` and
/// `initContainers` merge by `name`, everything else is replaced.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, pv) in p {
                if matches!(key.as_str(), "containers" | "initContainers")
                    && let (Some(Value::Array(list)), Value::Array(items)) = (t.get_mut(key), pv)
                {
                    for item in items {
                        let name = item.get("name");
                        match list.iter_mut().find(|c| c.get("name") == name) {
                            Some(existing) => merge_patch(existing, item),
                            None => list.push(item.clone()),
                        }
                    }
                    continue;
                }
                match t.get_mut(key) {
                    Some(tv) if tv.is_object() && pv.is_object() => merge_patch(tv, pv),
                    _ => {
                        t.insert(key.clone(), pv.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
