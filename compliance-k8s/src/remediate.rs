//! Remediation: minimal strategic-merge patches of the pod template, planned
//! from the typed workload; applied to a live object (server-side dry run by
//! default) or to a manifest written to a new file.

use compliance_core::{Change, CheckId, Risk, Scope, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::rules::{CheckConfig, evaluate};
use k8s_openapi::api::core::v1::SecurityContext;

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

/// The checks a patch can fix.
pub const FIXABLE_CHECKS: [&str; 6] = [
    "k8s.pod.run_as_non_root",
    "k8s.pod.run_as_user",
    "k8s.container.memory_limit",
    "k8s.container.cpu_limit",
    "k8s.container.privilege_escalation",
    "k8s.container.read_only_root_filesystem",
];

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

/// What fixing one manifest file produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestFix {
    /// The fixed YAML stream (every document, fixed or not).
    pub text: String,
    /// Per changed object (`file#doc/...` id), the changes made.
    pub changes: Vec<(String, Vec<Change>)>,
    /// Objects whose fixes still left a check failing, with the check.
    pub still_failing: Vec<(String, CheckId)>,
}

/// Fixes the failures of the fixable checks in `scope` in one manifest text
/// and returns the fixed stream, to be written to a new file. Every fixed
/// object is re-judged; what still fails is listed. Comments are not kept,
/// and keys come out in alphabetical order.
pub fn fix_manifest(
    text: &str,
    source_name: &str,
    scope: &Scope,
    defaults: &FixDefaults,
) -> Result<ManifestFix, compliance_core::Error> {
    let stream = compliance_core::yaml::parse_documents(text, source_name);
    if let Some(error) = stream.error {
        return Err(error);
    }
    let config = CheckConfig::default();
    let mut out = ManifestFix { text: String::new(), changes: Vec::new(), still_failing: Vec::new() };
    let mut documents = Vec::with_capacity(stream.documents.len());
    for doc in stream.documents {
        let mut value = doc.value;
        if let Ok(Some(workload)) = Workload::from_object(value.clone()) {
            let id = format!("{source_name}#{}/{}/{}", doc.index, workload.kind.as_str(), workload.name);
            let resource = std::sync::Arc::new(compliance_core::ResourceRef::new(
                "k8s",
                workload.kind.as_str(),
                id.clone(),
                workload.name.clone(),
            ));
            let mut changes = Vec::new();
            let mut current = workload;
            for e in evaluate(&current, std::sync::Arc::clone(&resource), &config, scope) {
                if e.status != Status::Fail || !FIXABLE_CHECKS.contains(&e.check_id.as_str()) {
                    continue;
                }
                let operation = format!("write {source_name} (fixed copy)");
                if let Some((patch, c)) = plan_patch(&current, &e.check_id, defaults, &operation) {
                    merge_patch(&mut value, &wrap_for_object(&current, patch));
                    changes.extend(c);
                    if let Ok(Some(next)) = Workload::from_object(value.clone()) {
                        current = next;
                    }
                }
            }
            for e in evaluate(&current, resource, &config, scope) {
                if e.status == Status::Fail && FIXABLE_CHECKS.contains(&e.check_id.as_str()) {
                    out.still_failing.push((id.clone(), e.check_id));
                }
            }
            if !changes.is_empty() {
                out.changes.push((id, changes));
            }
        }
        documents.push(value);
    }
    out.text = to_yaml_stream(&documents);
    Ok(out)
}

fn to_yaml(value: &Value) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(to_yaml).collect()),
        Value::Object(map) => Yaml::Hash(map.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v))).collect()),
    }
}

fn to_yaml_stream(documents: &[Value]) -> String {
    let mut text = String::new();
    for doc in documents {
        let mut one = String::new();
        let mut emitter = yaml_rust2::YamlEmitter::new(&mut one);
        // Emitting into a String cannot fail for lack of space.
        if emitter.dump(&to_yaml(doc)).is_ok() {
            text.push_str(&one);
            text.push('\n');
        }
    }
    text
}

#[cfg(feature = "cluster")]
mod live {
    use std::sync::Arc;

    use async_trait::async_trait;
    use compliance_core::{
        CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, ResourceRef, Scope, Status,
    };
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::discovery::ApiResource;
    use serde_json::json;

    use super::{FIXABLE_CHECKS, FixDefaults, plan_patch, risk_of, wrap_for_object};
    use crate::rules::{CheckConfig, evaluate};
    use crate::workload::Workload;

    /// Fixes Deployments, StatefulSets and DaemonSets in a live cluster with
    /// minimal strategic-merge patches. Dry run sends the patch with
    /// `dryRun=All`, so the API server validates it and admission runs, and
    /// changes nothing; apply sends it for real, then re-reads the object and
    /// re-judges the check.
    ///
    /// ```no_run
    /// use compliance_core::{Mode, Remediator};
    /// use compliance_k8s::WorkloadRemediator;
    /// # async fn demo(client: kube::Client, evidence: compliance_core::Evidence) -> compliance_core::Result<()> {
    /// let remediator = WorkloadRemediator::new(client);
    /// if let Some(plan) = remediator.plan(&evidence).await? {
    ///     for change in &plan.changes { println!("{} {}: {} -> {}", change.operation, change.target, change.before, change.after); }
    ///     let outcome = remediator.apply(&plan, Mode::DryRun).await?;
    ///     println!("{}", outcome.message);
    /// }
    /// # Ok(()) }
    /// ```
    #[derive(Clone)]
    pub struct WorkloadRemediator {
        client: kube::Client,
        defaults: Arc<FixDefaults>,
        checks: Arc<CheckConfig>,
    }

    impl WorkloadRemediator {
        /// A remediator using `client`, with the default fix values.
        pub fn new(client: kube::Client) -> Self {
            Self { client, defaults: Arc::new(FixDefaults::default()), checks: Arc::new(CheckConfig::default()) }
        }

        /// Sets the values fixes use.
        pub fn with_defaults(mut self, defaults: FixDefaults) -> Self {
            self.defaults = Arc::new(defaults);
            self
        }

        fn api(&self, kind: &str, namespace: &str) -> Option<(Api<DynamicObject>, ApiResource)> {
            let resource = match kind {
                "Deployment" => ApiResource::erase::<Deployment>(&()),
                "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
                "DaemonSet" => ApiResource::erase::<DaemonSet>(&()),
                _ => return None,
            };
            Some((Api::namespaced_with(self.client.clone(), namespace, &resource), resource))
        }

        fn failure(&self, reason: impl Into<String>) -> Error {
            Error::Remediation { remediator: self.name().to_owned(), reason: reason.into() }
        }

        async fn fetch(
            &self,
            resource: &ResourceRef,
        ) -> compliance_core::Result<(Api<DynamicObject>, ApiResource, Workload)> {
            let namespace = resource
                .namespace
                .as_deref()
                .ok_or_else(|| self.failure(format!("{} has no namespace", resource.id)))?;
            let (api, ar) = self.api(&resource.kind, namespace).ok_or_else(|| {
                self.failure(format!(
                    "{} objects are not remediated; only Deployments, StatefulSets and DaemonSets",
                    resource.kind
                ))
            })?;
            let object =
                api.get(&resource.name).await.map_err(|e| self.failure(format!("GET {}: {e}", resource.id)))?;
            let workload = to_workload(object, &ar).map_err(|e| self.failure(e))?;
            Ok((api, ar, workload))
        }

        fn judge(&self, workload: &Workload, plan: &RemediationPlan) -> Option<Evidence> {
            evaluate(workload, plan.resource.clone(), &self.checks, &Scope::only([plan.check_id.as_str()]))
                .into_iter()
                .next()
        }
    }

    fn to_workload(object: DynamicObject, ar: &ApiResource) -> Result<Workload, String> {
        let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_object_mut() {
            map.entry("apiVersion").or_insert_with(|| json!(ar.api_version));
            map.entry("kind").or_insert_with(|| json!(ar.kind));
        }
        match Workload::from_object(value) {
            Ok(Some(w)) => Ok(w),
            Ok(None) => Err("the object is not a workload".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[async_trait]
    impl Remediator for WorkloadRemediator {
        fn name(&self) -> &str {
            "k8s-workloads"
        }

        fn fixes(&self) -> Vec<CheckId> {
            FIXABLE_CHECKS.iter().filter_map(|id| id.parse().ok()).collect()
        }

        async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
            if evidence.status != Status::Fail || !FIXABLE_CHECKS.contains(&evidence.check_id.as_str()) {
                return Ok(None);
            }
            let (_, ar, workload) = self.fetch(&evidence.resource).await?;
            let operation = format!(
                "PATCH {} {} {}/{} (strategic merge)",
                ar.api_version,
                ar.plural,
                evidence.resource.namespace.as_deref().unwrap_or_default(),
                evidence.resource.name
            );
            let Some((pod_patch, changes)) = plan_patch(&workload, &evidence.check_id, &self.defaults, &operation)
            else {
                return Ok(None);
            };
            let payload = wrap_for_object(&workload, pod_patch);
            let summary = format!(
                "fix {} on {} {} with a {}-field patch",
                evidence.check_id,
                evidence.resource.kind,
                evidence.resource.name,
                changes.len()
            );
            Ok(Some(RemediationPlan::new(
                self.name(),
                evidence,
                summary,
                changes,
                risk_of(&evidence.check_id),
                payload,
            )))
        }

        async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
            let (api, ar, _) = self.fetch(&plan.resource).await?;
            let mut params = PatchParams { field_manager: Some("compliance-rs".into()), ..PatchParams::default() };
            if mode == Mode::DryRun {
                params = params.dry_run();
            }
            let answer = api
                .patch(&plan.resource.name, &params, &Patch::Strategic(&plan.payload))
                .await
                .map_err(|e| self.failure(format!("PATCH {}: {e}", plan.resource.id)))?;
            let answered = to_workload(answer, &ar).map_err(|e| self.failure(e))?;
            let predicted = self.judge(&answered, plan).map(|e| e.status);
            let record = json!({ "patch": plan.payload, "dry_run": mode == Mode::DryRun, "server_verdict": predicted });
            if mode == Mode::DryRun {
                let message = format!(
                    "dry run: the API server accepted the patch; {} would be {}",
                    plan.check_id,
                    predicted.map_or("unknown", |s| s.as_str())
                );
                return Ok(RemediationOutcome::new(plan, mode, false, message).with_record(record));
            }
            // Re-read rather than trust the PATCH answer: admission or a
            // controller may have changed the object since.
            let (_, _, reread) = self.fetch(&plan.resource).await?;
            let verification = self
                .judge(&reread, plan)
                .ok_or_else(|| self.failure(format!("{} produced no evidence after the patch", plan.check_id)))?;
            let message = format!(
                "patched {} {}; {} is now {}",
                plan.resource.kind, plan.resource.name, plan.check_id, verification.status
            );
            let record = json!({ "patch": plan.payload, "dry_run": false, "changes": plan.changes, "verified": verification.status });
            Ok(RemediationOutcome::new(plan, mode, true, message).with_record(record).with_verification(verification))
        }
    }
}

#[cfg(feature = "cluster")]
pub use live::WorkloadRemediator;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_by_container_name() {
        let mut target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        merge_patch(
            &mut target,
            &json!({"spec": {"containers": [{"name": "b", "securityContext": {"runAsNonRoot": true}}]}}),
        );
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "securityContext": {"runAsNonRoot": true}}]}})
        );
    }
}
