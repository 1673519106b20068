//! Admission: judge the object of an `AdmissionReview` request and answer
//! allowed or denied, with the failing checks' messages.

use compliance_core::{ResourceRef, Scope, Severity, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::rules::{CheckConfig, evaluate};
use crate::workload::Workload;

/// How admission decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AdmissionConfig {
    /// Failures at or above this severity deny; lower ones become warnings.
    pub deny_severity: Severity,
    /// Never deny: every failure becomes a warning.
    pub warn_only: bool,
    /// The checks to run.
    pub scope: Scope,
    /// Check settings.
    pub checks: CheckConfig,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self { deny_severity: Severity::High, warn_only: false, scope: Scope::all(), checks: CheckConfig::default() }
    }
}

impl AdmissionConfig {
    /// Sets the severity from which failures deny.
    pub fn with_deny_severity(mut self, severity: Severity) -> Self {
        self.deny_severity = severity;
        self
    }

    /// Sets warn-only mode.
    pub fn warn_only(mut self, warn_only: bool) -> Self {
        self.warn_only = warn_only;
        self
    }

    /// Sets the checks to run.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
}

/// Why a review could not be answered at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// The body is not an `admission.k8s.io/v1` `AdmissionReview` with a request.
    #[error("not an admission.k8s.io/v1 AdmissionReview request: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: String,
    kind: String,
    request: Option<Request>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    object: Option<Value>,
}

/// Judges an `AdmissionReview` (admission.k8s.io/v1) and returns the
/// `AdmissionReview` response. Objects that are not workloads, and DELETE
/// requests, are allowed. An object that is a workload but cannot be read is
/// denied with the field at fault.
///
/// ```
/// use compliance_k8s::{AdmissionConfig, review};
/// let request = serde_json::json!({
///   "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
///   "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": "CREATE", "namespace": "default",
///     "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
///                "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}}}
/// });
/// let response = review(&request, &AdmissionConfig::default())?;
/// assert_eq!(response["response"]["allowed"], false);
/// assert_eq!(response["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
/// # Ok::<(), compliance_k8s::AdmissionError>(())
/// ```
pub fn review(body: &Value, config: &AdmissionConfig) -> Result<Value, AdmissionError> {
    let review: Review = serde_json::from_value(body.clone()).map_err(|e| AdmissionError::Malformed(e.to_string()))?;
    if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
        return Err(AdmissionError::Malformed(format!("apiVersion {:?} kind {:?}", review.api_version, review.kind)));
    }
    let request = review.request.ok_or_else(|| AdmissionError::Malformed("no request".into()))?;
    let answer = |allowed: bool, message: Option<String>, warnings: Vec<String>| {
        let mut response = json!({ "uid": request.uid, "allowed": allowed });
        if let Some(m) = message {
            response["status"] = json!({ "code": 403, "reason": "Forbidden", "message": m });
        }
        if !warnings.is_empty() {
            response["warnings"] = json!(warnings);
        }
        json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response })
    };
    let Some(mut object) = request.object.clone().filter(|_| request.operation.as_deref() != Some("DELETE")) else {
        return Ok(answer(true, None, Vec::new()));
    };
    // Objects in a request may omit the namespace; the request carries it.
    if let (Some(ns), Some(meta)) = (&request.namespace, object.get_mut("metadata").and_then(Value::as_object_mut)) {
        meta.entry("namespace").or_insert_with(|| json!(ns));
    }
    let workload = match Workload::from_object(object) {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(answer(true, None, Vec::new())),
        Err(e) => return Ok(answer(false, Some(format!("the object cannot be judged: {e}")), Vec::new())),
    };
    let id = format!(
        "admission/{}/{}/{}",
        request.namespace.as_deref().unwrap_or("-"),
        workload.kind.as_str(),
        workload.name
    );
    let resource =
        ResourceRef::new("k8s", workload.kind.as_str(), id, workload.name.clone()).with_labels(workload.labels.clone());
    let evidence = evaluate(&workload, resource, &config.checks, &config.scope);
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for e in evidence.iter().filter(|e| e.status == Status::Fail) {
        let line = format!("{} ({}): {}", e.check_id, e.severity, e.message);
        if !config.warn_only && e.severity >= config.deny_severity {
            denials.push(line);
        } else {
            warnings.push(line);
        }
    }
    Ok(if denials.is_empty() {
        answer(true, None, warnings)
    } else {
        answer(false, Some(denials.join("; ")), warnings)
    })
}
