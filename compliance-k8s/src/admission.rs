//! Admission: judge the object of an `AdmissionReview` request and answer
//! allowed or denied, with the failing checks' messages.

use compliance_core::{Evidence, ResourceRef, Scope, Severity, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::CheckConfig;
use crate::judge::{KubeObject, judge_object};

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
    /// What to answer when the object cannot be judged in time or a policy
    /// fails to evaluate, as Kubernetes names it: `Fail` denies
    /// (fail-closed), `Ignore` allows with a warning (fail-open).
    pub failure_policy: FailurePolicy,
}

/// Kubernetes' `failurePolicy`, applied by the webhook itself when it
/// cannot judge: before the API server's own timeout does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Deny (fail-closed).
    #[default]
    Fail,
    /// Allow, with a warning (fail-open).
    Ignore,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            deny_severity: Severity::High,
            warn_only: false,
            scope: Scope::all(),
            checks: CheckConfig::default(),
            failure_policy: FailurePolicy::Fail,
        }
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

    /// Sets the failure policy.
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// Sets the check settings (and, with feature `rego`, the policies).
    pub fn with_checks(mut self, checks: CheckConfig) -> Self {
        self.checks = checks;
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

/// The evidence for the object of an admission request, on the one judge
/// path. `Err` names the field at fault of a workload that cannot be read.
fn judge(
    body: &Value,
    object: &Value,
    namespace: Option<&str>,
    config: &AdmissionConfig,
) -> Result<Vec<Evidence>, String> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<unnamed>").to_owned();
    let id = admission_resource_id(namespace, &kind, &name);
    let mut resource = ResourceRef::new("k8s", kind, id, name);
    if let Some(ns) = namespace {
        resource = resource.with_namespace(ns);
    }
    let judged = judge_object(&KubeObject::new(object, resource).with_admission(body), &config.checks, &config.scope);
    match judged.unreadable {
        Some((_, reason)) => Err(format!("the object cannot be judged: {reason}")),
        None => Ok(judged.evidence),
    }
}

/// The resource id of an object seen in admission requests: the same for
/// its CREATE, UPDATE and DELETE.
pub(crate) fn admission_resource_id(namespace: Option<&str>, kind: &str, name: &str) -> String {
    format!("admission/{}/{kind}/{name}", namespace.unwrap_or("-"))
}

/// The `AdmissionReview` response: allowed or denied (403, with the
/// message), and warnings.
pub(crate) fn admission_response(uid: &str, allowed: bool, message: Option<String>, warnings: Vec<String>) -> Value {
    let mut response = json!({ "uid": uid, "allowed": allowed });
    if let Some(m) = message {
        response["status"] = json!({ "code": 403, "reason": "Forbidden", "message": m });
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response })
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
    review_with_evidence(body, config).map(|(answer, _)| answer)
}

/// [`review`], and the evidence behind the answer (for metrics and records).
pub fn review_with_evidence(body: &Value, config: &AdmissionConfig) -> Result<(Value, Vec<Evidence>), AdmissionError> {
    let review: Review = serde_json::from_value(body.clone()).map_err(|e| AdmissionError::Malformed(e.to_string()))?;
    if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
        return Err(AdmissionError::Malformed(format!("apiVersion {:?} kind {:?}", review.api_version, review.kind)));
    }
    let request = review.request.ok_or_else(|| AdmissionError::Malformed("no request".into()))?;
    let answer = |allowed: bool, message: Option<String>, warnings: Vec<String>| {
        admission_response(&request.uid, allowed, message, warnings)
    };
    let Some(mut object) = request.object.clone().filter(|_| request.operation.as_deref() != Some("DELETE")) else {
        return Ok((answer(true, None, Vec::new()), Vec::new()));
    };
    // Objects in a request may omit the namespace; the request carries it.
    if let (Some(ns), Some(meta)) = (&request.namespace, object.get_mut("metadata").and_then(Value::as_object_mut)) {
        meta.entry("namespace").or_insert_with(|| json!(ns));
    }
    let evidence = match judge(body, &object, request.namespace.as_deref(), config) {
        Ok(evidence) => evidence,
        Err(reason) => return Ok((answer(false, Some(reason), Vec::new()), Vec::new())),
    };
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for e in evidence.iter().filter(|e| matches!(e.status, Status::Fail | Status::Error)) {
        let line = bounded(format!("{} ({}): {}", e.check_id, e.severity, e.message));
        let denies = match e.status {
            Status::Error => config.failure_policy == FailurePolicy::Fail,
            _ => e.severity >= config.deny_severity,
        };
        if !config.warn_only && denies {
            denials.push(line);
        } else {
            warnings.push(line);
        }
    }
    // The API server shows the answer to a person and keeps it in events: a
    // bounded list, the rest counted.
    let (denials, warnings) = (at_most(denials), at_most(warnings));
    let response = if denials.is_empty() {
        answer(true, None, warnings)
    } else {
        answer(false, Some(denials.join("; ")), warnings)
    };
    Ok((response, evidence))
}

/// Lines of an answer before the rest are counted, and characters of a line.
const MAX_ANSWER_LINES: usize = 20;
const MAX_LINE_CHARS: usize = 1_000;

fn bounded(line: String) -> String {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn at_most(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_ANSWER_LINES {
        let more = lines.len() - MAX_ANSWER_LINES;
        lines.truncate(MAX_ANSWER_LINES);
        lines.push(format!("and {more} more"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_bounded_however_many_failures_there_are() -> Result<(), AdmissionError> {
        let containers: Vec<Value> = (0..100_000)
            .map(|i| json!({ "name": format!("c{i}"), "image": "x:1", "securityContext": {"privileged": true} }))
            .collect();
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "operation": "CREATE", "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wide"}, "spec": {"containers": containers}}}});
        let answer = review_with_evidence(&review, &AdmissionConfig::default())?.0.to_string();
        assert_eq!(review["request"]["object"]["spec"]["containers"].as_array().map(Vec::len), Some(100_000));
        assert!(answer.len() < 64 * 1024, "{} bytes", answer.len());
        assert!(answer.contains("\"allowed\":false"));
        let lines: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let kept = at_most(lines);
        assert_eq!((kept.len(), kept[20].as_str()), (21, "and 10 more"));
        assert_eq!(bounded("x".repeat(5_000)).chars().count(), MAX_LINE_CHARS + 1);
        Ok(())
    }
}
