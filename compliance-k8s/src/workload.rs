//! Workloads: every object kind that holds a pod template, reduced to what the
//! checks judge (identity, labels, the typed `PodSpec`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec, ResourceRequirements, SecurityContext};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kinds that hold a pod spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WorkloadKind {
    /// `v1 Pod`.
    Pod,
    /// `apps/v1 Deployment`.
    Deployment,
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// `apps/v1 DaemonSet`.
    DaemonSet,
    /// `apps/v1 ReplicaSet`.
    ReplicaSet,
    /// `v1 ReplicationController`.
    ReplicationController,
    /// `batch/v1 Job`.
    Job,
    /// `batch/v1 CronJob`.
    CronJob,
}

impl WorkloadKind {
    /// All kinds.
    pub const ALL: [WorkloadKind; 8] = [
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
    ];

    /// The kind of an object, when it is a workload of a built-in API group
    /// (older groups such as `extensions/v1beta1` included: the pod template
    /// has kept its shape). Custom resources that reuse a name are not.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let kind = match kind {
            "Pod" => WorkloadKind::Pod,
            "ReplicationController" => WorkloadKind::ReplicationController,
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            _ => return None,
        };
        let group_ok = match kind {
            WorkloadKind::Pod | WorkloadKind::ReplicationController => group.is_empty(),
            WorkloadKind::Deployment
            | WorkloadKind::StatefulSet
            | WorkloadKind::DaemonSet
            | WorkloadKind::ReplicaSet => {
                matches!(group, "apps" | "extensions")
            }
            WorkloadKind::Job | WorkloadKind::CronJob => group == "batch",
        };
        group_ok.then_some(kind)
    }

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
        }
    }

    /// Where the pod template sits in the object.
    pub fn template_path(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Pod => &[],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }

    /// The pod spec's field path, for evidence details.
    pub fn pod_spec_path(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "spec",
            WorkloadKind::CronJob => "spec.jobTemplate.spec.template.spec",
            _ => "spec.template.spec",
        }
    }
}

/// A workload: identity, labels and the typed pod spec.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Workload {
    /// Kind.
    pub kind: WorkloadKind,
    /// `metadata.name` (or `generateName`, for objects not yet named).
    pub name: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the pod (the template's, for controllers).
    pub pod_annotations: BTreeMap<String, String>,
    /// The pod spec.
    pub spec: PodSpec,
}

/// Why an object that is a workload could not be read: the field and what
/// is wrong with it. Values are never quoted, since they may be secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WorkloadError {
    /// The field at fault, as a path in the object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Workload {
    /// Reads a workload from a Kubernetes object as JSON. `Ok(None)` when the
    /// object is not a workload (a Service, a Secret, a custom resource).
    ///
    /// ```
    /// use compliance_k8s::Workload;
    /// let object = serde_json::json!({
    ///     "apiVersion": "apps/v1", "kind": "Deployment",
    ///     "metadata": {"name": "web", "labels": {"app": "web"}},
    ///     "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    /// });
    /// let workload = Workload::from_object(object)?.expect("a Deployment is a workload");
    /// assert_eq!(workload.spec.containers[0].name, "web");
    /// # Ok::<(), compliance_k8s::WorkloadError>(())
    /// ```
    pub fn from_object(object: Value) -> Result<Option<Workload>, WorkloadError> {
        Self::from_value(&object)
    }

    /// [`from_object`](Self::from_object) on a borrowed object: nothing is copied but the pod spec it reads.
    pub fn from_value(object: &Value) -> Result<Option<Workload>, WorkloadError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let Some(kind) = WorkloadKind::from_type(api_version, kind_name) else {
            return Ok(None);
        };
        let metadata = object.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let namespace = metadata.and_then(|m| m.get("namespace")).and_then(Value::as_str).map(str::to_owned);
        let labels = string_map(metadata.and_then(|m| m.get("labels")), "metadata.labels")?;

        let mut template = object;
        let mut path = String::new();
        for step in kind.template_path() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(step);
            template = match template.get(*step) {
                Some(next) => next,
                None => return Err(WorkloadError { field: path, message: "missing".into() }),
            };
        }
        let prefix = if path.is_empty() { String::new() } else { format!("{path}.") };
        let pod_annotations = string_map(
            template.get("metadata").and_then(|m| m.get("annotations")),
            &format!("{prefix}metadata.annotations"),
        )?;
        let spec_value = template
            .get("spec")
            .ok_or_else(|| WorkloadError { field: kind.pod_spec_path().into(), message: "missing".into() })?;
        // Path tracking is slow; it is only needed to name the field at fault.
        let spec = match PodSpec::deserialize(spec_value) {
            Ok(spec) => spec,
            Err(plain) => {
                let located: Result<PodSpec, _> = serde_path_to_error::deserialize(spec_value);
                return Err(match located {
                    Err(e) => WorkloadError {
                        field: format!("{}.{}", kind.pod_spec_path(), e.path()),
                        message: redact(&e.inner().to_string()),
                    },
                    Ok(_) => WorkloadError { field: kind.pod_spec_path().into(), message: redact(&plain.to_string()) },
                });
            }
        };
        Ok(Some(Workload { kind, name, namespace, labels, pod_annotations, spec }))
    }

    /// Every container of the pod: containers, init containers, ephemeral
    /// containers, with the field path of each.
    pub fn containers(&self) -> impl Iterator<Item = ContainerRef<'_>> {
        let base = self.kind.pod_spec_path();
        let regular = self
            .spec
            .containers
            .iter()
            .enumerate()
            .map(move |(i, c)| ContainerRef::of(c, ContainerGroup::Containers, i, base));
        let init = self
            .spec
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .map(move |(i, c)| ContainerRef::of(c, ContainerGroup::InitContainers, i, base));
        let ephemeral = self
            .spec
            .ephemeral_containers
            .iter()
            .flatten()
            .enumerate()
            .map(move |(i, c)| ContainerRef::of_ephemeral(c, i, base));
        regular.chain(init).chain(ephemeral)
    }
}

fn string_map(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, WorkloadError> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(WorkloadError { field: format!("{field}.{k}"), message: "must be a string".into() }),
            })
            .collect(),
        Some(_) => Err(WorkloadError { field: field.into(), message: "must be a map of strings".into() }),
    }
}

/// Replaces quoted values in a deserialisation message: they may be secret.
fn redact(message: &str) -> String {
    // serde quotes a string value ("…") and shows other values in backticks
    // after their kind (integer `1234`, boolean `true`, unknown variant `x`):
    // both may be a secret's value (a numeric DB_PASSWORD), so both go.
    const BACKTICKED: [&str; 5] = ["integer `", "floating point `", "boolean `", "character `", "unknown variant `"];
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if !quoted && let Some(marker) = BACKTICKED.iter().find(|m| rest.starts_with(**m)) {
            let after = &rest[marker.len()..];
            out.push_str(marker);
            out.push_str("<redacted>`");
            rest = after.split_once('`').map_or("", |(_, tail)| tail);
            continue;
        }
        if c == '"' {
            if quoted {
                out.push_str("<redacted>\"");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Which list of the pod spec a container is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerGroup {
    /// `containers`.
    Containers,
    /// `initContainers`.
    InitContainers,
    /// `ephemeralContainers`.
    EphemeralContainers,
}

impl ContainerGroup {
    /// The field name.
    pub fn field(self) -> &'static str {
        match self {
            ContainerGroup::Containers => "containers",
            ContainerGroup::InitContainers => "initContainers",
            ContainerGroup::EphemeralContainers => "ephemeralContainers",
        }
    }
}

/// A view of one container, whatever list it is in.
#[derive(Clone, Copy, Debug)]
pub struct ContainerRef<'a> {
    /// Its list.
    pub group: ContainerGroup,
    /// Its index in the list.
    pub index: usize,
    /// `name`.
    pub name: &'a str,
    /// `image`.
    pub image: Option<&'a str>,
    /// `securityContext`.
    pub security_context: Option<&'a SecurityContext>,
    /// `resources`.
    pub resources: Option<&'a ResourceRequirements>,
    /// `ports`.
    pub ports: &'a [k8s_openapi::api::core::v1::ContainerPort],
    base: &'static str,
}

impl<'a> ContainerRef<'a> {
    fn of(c: &'a Container, group: ContainerGroup, index: usize, base: &'static str) -> Self {
        Self {
            group,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            resources: c.resources.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            base,
        }
    }

    fn of_ephemeral(c: &'a EphemeralContainer, index: usize, base: &'static str) -> Self {
        Self {
            group: ContainerGroup::EphemeralContainers,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            resources: c.resources.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            base,
        }
    }

    /// The field path of `suffix` in this container
    /// (`spec.template.spec.containers[0].securityContext.privileged`).
    pub fn field(&self, suffix: &str) -> String {
        format!("{}.{}[{}].{}", self.base, self.group.field(), self.index, suffix)
    }

    /// True for containers and init containers (ephemeral ones cannot set
    /// resources).
    pub fn takes_resources(&self) -> bool {
        self.group != ContainerGroup::EphemeralContainers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_by_group() {
        assert_eq!(WorkloadKind::from_type("apps/v1", "Deployment"), Some(WorkloadKind::Deployment));
        assert_eq!(WorkloadKind::from_type("extensions/v1beta1", "Deployment"), Some(WorkloadKind::Deployment));
        assert_eq!(WorkloadKind::from_type("v1", "Pod"), Some(WorkloadKind::Pod));
        assert_eq!(WorkloadKind::from_type("batch/v1", "CronJob"), Some(WorkloadKind::CronJob));
        assert_eq!(WorkloadKind::from_type("example.com/v1", "Deployment"), None);
        assert_eq!(WorkloadKind::from_type("v1", "Service"), None);
        assert_eq!(WorkloadKind::from_type("v1", "Secret"), None);
    }

    #[test]
    fn cronjob_template_is_found() -> Result<(), WorkloadError> {
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
                "metadata": {"annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "job"}], "restartPolicy": "Never"}}}}}});
        let w =
            Workload::from_object(cron)?.ok_or_else(|| WorkloadError { field: "".into(), message: "none".into() })?;
        assert_eq!(w.spec.containers[0].name, "job");
        assert_eq!(w.pod_annotations.get("a").map(String::as_str), Some("b"));
        let c = w.containers().next().map(|c| c.field("image"));
        assert_eq!(c.as_deref(), Some("spec.jobTemplate.spec.template.spec.containers[0].image"));
        Ok(())
    }

    #[test]
    fn bad_fields_are_named_and_values_redacted() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "env": [{"name": "PASSWORD", "value": 42}],
                "ports": [{"containerPort": "hunter2"}]}]}});
        let err = Workload::from_object(pod).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("spec.containers[0]."), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        // A number where a string belongs: serde shows it in backticks, not quotes.
        for (value, secret) in [(json!(987_654_321), "987654321"), (json!(true), "true"), (json!(12.5), "12.5")] {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "env": [{"name": "DB_PASSWORD", "value": value}]}]}});
            let err = Workload::from_object(pod.clone()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.starts_with("spec.containers[0].env[0].value: invalid type:"), "{err}");
            assert!(!err.contains(secret), "{err}");
            let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u", "operation": "CREATE", "object": pod}});
            let answer = crate::review(&review, &crate::AdmissionConfig::default()).map(|a| a.to_string());
            assert!(answer.as_deref().is_ok_and(|a| a.contains("invalid type") && !a.contains(secret)), "{answer:?}");
        }
        let missing = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}});
        assert_eq!(
            Workload::from_object(missing).err().map(|e| e.to_string()).as_deref(),
            Some("spec.template: missing")
        );
    }
}
