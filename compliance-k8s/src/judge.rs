//! The one judge path of a Kubernetes object, whatever its source: a
//! manifest, a live object, an admission request.
//!
//! The built-in rules and Rego policies sit behind one interface,
//! [`ObjectJudge`]. Sources build a [`KubeObject`] and call [`judge_object`];
//! nothing else decides which checks see which object.

use std::borrow::Cow;
use std::sync::Arc;

use compliance_core::{Check, Evidence, ResourceRef, Scope};
use serde_json::{Value, json};

use crate::config::CheckConfig;
use crate::rules::evaluate;
use crate::workload::{Workload, WorkloadKind};

/// An object to judge, with the resource its evidence names.
#[derive(Debug)]
pub struct KubeObject<'a> {
    value: &'a Value,
    api_version: &'a str,
    kind: &'a str,
    resource: Arc<ResourceRef>,
    admission: Option<&'a Value>,
}

impl<'a> KubeObject<'a> {
    /// An object read from a file or an API list. Its labels are put on the
    /// resource.
    pub fn new(value: &'a Value, resource: ResourceRef) -> Self {
        let labels = value.pointer("/metadata/labels").and_then(|l| serde_json::from_value(l.clone()).ok());
        let str_of = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        Self {
            value,
            api_version: str_of("apiVersion"),
            kind: str_of("kind"),
            resource: Arc::new(resource.with_labels(labels.unwrap_or_default())),
            admission: None,
        }
    }

    /// The object of an admission request: policies see that request as it came.
    pub fn with_admission(mut self, review: &'a Value) -> Self {
        self.admission = Some(review);
        self
    }

    /// The object as JSON.
    pub fn value(&self) -> &Value {
        self.value
    }

    /// `apiVersion` and `kind`.
    pub fn type_of(&self) -> (&str, &str) {
        (self.api_version, self.kind)
    }

    /// The resource its evidence names.
    pub fn resource(&self) -> &Arc<ResourceRef> {
        &self.resource
    }

    /// The `AdmissionReview` a policy reads: the request's own, or the CREATE
    /// request this object would be admitted with.
    pub fn admission_input(&self) -> Cow<'_, Value> {
        match self.admission {
            Some(review) => Cow::Borrowed(review),
            None => Cow::Owned(admission_input(self.value, None)),
        }
    }
}

/// Judges Kubernetes objects: the built-in rules and Rego policies alike.
pub trait ObjectJudge {
    /// The checks it can produce.
    fn checks(&self) -> Vec<Check>;
    /// True when it judges objects of this `apiVersion` and `kind`.
    fn judges(&self, api_version: &str, kind: &str) -> bool;
    /// The evidence for one object, or why the object cannot be read.
    fn judge(&self, object: &KubeObject<'_>, scope: &Scope) -> Result<Vec<Evidence>, String>;
}

#[cfg(feature = "rego")]
impl ObjectJudge for crate::rego::RegoPolicies {
    fn checks(&self) -> Vec<Check> {
        crate::rego::RegoPolicies::checks(self)
    }

    fn judges(&self, api_version: &str, kind: &str) -> bool {
        crate::rego::RegoPolicies::judges(self, api_version, kind)
    }

    fn judge(&self, object: &KubeObject<'_>, scope: &Scope) -> Result<Vec<Evidence>, String> {
        Ok(self.evaluate(object.value(), &object.admission_input(), object.resource(), scope))
    }
}

/// The built-in rules, with their settings.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinRules<'a>(pub &'a CheckConfig);

impl ObjectJudge for BuiltinRules<'_> {
    fn checks(&self) -> Vec<Check> {
        crate::rules::checks()
    }

    fn judges(&self, api_version: &str, kind: &str) -> bool {
        WorkloadKind::from_type(api_version, kind).is_some()
    }

    fn judge(&self, object: &KubeObject<'_>, scope: &Scope) -> Result<Vec<Evidence>, String> {
        match Workload::from_value(object.value) {
            Ok(Some(workload)) => Ok(evaluate(&workload, Arc::clone(&object.resource), self.0, scope)),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl CheckConfig {
    /// The built-in checks and, with feature `rego`, the policies' checks.
    pub fn checks(&self) -> Vec<Check> {
        #[allow(unused_mut)]
        let mut all = BuiltinRules(self).checks();
        #[cfg(feature = "rego")]
        all.extend(self.policies.checks());
        all
    }
}

/// What judging one object gave.
#[derive(Debug, Default)]
pub struct Judged {
    /// Evidence, one per check that judged it.
    pub evidence: Vec<Evidence>,
    /// Why the object, a workload, could not be read; its built-in checks
    /// gave no evidence. Sources turn this into `error` evidence or a denial.
    pub unreadable: Option<(WorkloadKind, String)>,
}

/// True when some check of `config` judges objects of this type: sources
/// skip the rest (Services, ConfigMaps, Secrets) before building anything.
pub fn judges_type(config: &CheckConfig, api_version: &str, kind: &str) -> bool {
    let builtin = BuiltinRules(config);
    judges(config, &builtin).into_iter().any(|j| j.judges(api_version, kind))
}

/// The judges of `config`: the policies first, then the built-in rules, the
/// order evidence has always come in.
#[cfg(feature = "rego")]
fn judges<'a>(config: &'a CheckConfig, builtin: &'a BuiltinRules<'a>) -> [&'a dyn ObjectJudge; 2] {
    [&*config.policies, builtin]
}

#[cfg(not(feature = "rego"))]
fn judges<'a>(_: &'a CheckConfig, builtin: &'a BuiltinRules<'a>) -> [&'a dyn ObjectJudge; 1] {
    [builtin]
}

/// Judges one object with every judge of `config` that judges its type:
/// the built-in rules and, with feature `rego`, the policies.
pub fn judge_object(object: &KubeObject<'_>, config: &CheckConfig, scope: &Scope) -> Judged {
    let (api_version, kind) = object.type_of();
    let builtin = BuiltinRules(config);
    let mut judged = Judged::default();
    for judge in judges(config, &builtin).into_iter().filter(|j| j.judges(api_version, kind)) {
        match judge.judge(object, scope) {
            Ok(evidence) => judged.evidence.extend(evidence),
            Err(reason) => match WorkloadKind::from_type(api_version, kind) {
                Some(workload) => judged.unreadable = Some((workload, reason)),
                None => tracing::warn!(kind, "{reason}"),
            },
        }
    }
    judged
}

/// Wraps an object as the `AdmissionReview` a CREATE request for it would
/// carry, which is what admission policies read (`input.request.object`).
pub fn admission_input(object: &Value, namespace: Option<&str>) -> Value {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let meta = object.get("metadata");
    let namespace = namespace.or_else(|| meta.and_then(|m| m.get("namespace")).and_then(Value::as_str));
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "kind": { "group": group, "version": version, "kind": object.get("kind") },
            "name": meta.and_then(|m| m.get("name")),
            "namespace": namespace,
            "operation": "CREATE",
            "object": object,
        }
    })
}
