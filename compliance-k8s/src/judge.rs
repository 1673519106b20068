//! The one judge path of a Kubernetes object, whatever its source: a
//! manifest, a live object, an admission request.
//!
//! The built-in rules and Rego policies sit behind one interface,
//! [`ObjectJudge`]. Sources build a [`KubeObject`] and call [`judge_object`];
//! nothing else decides which checks see which object.

use std::borrow::Cow;
use std::sync::Arc;

use compliance_core::{Check, Evidence, ResourceRef, Scope};
use serde_json::Value;

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
            None => Cow::Owned(crate::admission::admission_input(self.value, None)),
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
    #[cfg(feature = "rego")]
    if config.policies.judges(api_version, kind) {
        return true;
    }
    BuiltinRules(config).judges(api_version, kind)
}

/// Judges one object with every judge of `config` that judges its type.
pub fn judge_object(object: &KubeObject<'_>, config: &CheckConfig, scope: &Scope) -> Judged {
    let (api_version, kind) = object.type_of();
    let mut judged = Judged::default();
    #[cfg(feature = "rego")]
    {
        let policies: &crate::rego::RegoPolicies = &config.policies;
        if policies.judges(api_version, kind)
            && let Ok(evidence) = policies.judge(object, scope)
        {
            judged.evidence.extend(evidence);
        }
    }
    let builtin = BuiltinRules(config);
    if builtin.judges(api_version, kind) {
        match builtin.judge(object, scope) {
            Ok(evidence) => judged.evidence.extend(evidence),
            Err(reason) => {
                judged.unreadable = WorkloadKind::from_type(api_version, kind).map(|k| (k, reason));
            }
        }
    }
    judged
}
