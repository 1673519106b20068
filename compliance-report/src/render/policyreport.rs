//! Kubernetes policy reports: `wgpolicyk8s.io/v1alpha2` PolicyReport and
//! ClusterPolicyReport, and their successor `openreports.io/v1alpha1` Report
//! and ClusterReport. Both APIs share one result shape; only the group and
//! the kinds differ (and OpenReports adds a top-level `source`).
//!
//! One result is one check on one resource. Namespaced Kubernetes resources
//! go into a report of their namespace (a manifest without a namespace into
//! `default`, where `kubectl apply` would put it); everything else (cluster
//! scoped objects, AWS resources) into the cluster-wide report, so no
//! evidence is left out. Reports hold at most [`RESULTS_PER_REPORT`] results
//! and are split beyond, because an object in etcd is limited to about 1.5 MiB.

use std::collections::{BTreeMap, HashMap};

use compliance_core::{CheckId, Evidence, Status};
use serde_json::{Map, Value, json};

use crate::model::Report;

/// The results in one report object; more are split into `-2`, `-3`, ...
pub const RESULTS_PER_REPORT: usize = 500;

/// The `source` of every result, and the `app.kubernetes.io/managed-by` label
/// of every report (the monitor prunes by it).
pub const SOURCE: &str = "compliance-rs";

/// Messages longer than this are cut (with `…`): one report holds hundreds.
const MAX_MESSAGE_CHARS: usize = 1_000;

/// Which policy report API to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyReportApi {
    /// `wgpolicyk8s.io/v1alpha2`: PolicyReport and ClusterPolicyReport, read
    /// by Policy Reporter, Kyverno's tooling and others.
    WgPolicy,
    /// `openreports.io/v1alpha1`: Report and ClusterReport, the successor API.
    OpenReports,
}

impl PolicyReportApi {
    /// `apiVersion` of the reports.
    pub fn api_version(self) -> &'static str {
        match self {
            PolicyReportApi::WgPolicy => "wgpolicyk8s.io/v1alpha2",
            PolicyReportApi::OpenReports => "openreports.io/v1alpha1",
        }
    }

    /// The namespaced kind.
    pub fn kind(self) -> &'static str {
        match self {
            PolicyReportApi::WgPolicy => "PolicyReport",
            PolicyReportApi::OpenReports => "Report",
        }
    }

    /// The cluster-scoped kind.
    pub fn cluster_kind(self) -> &'static str {
        match self {
            PolicyReportApi::WgPolicy => "ClusterPolicyReport",
            PolicyReportApi::OpenReports => "ClusterReport",
        }
    }
}

/// Every report object of `report` in `api`: namespaced reports first (by
/// namespace), then the cluster-wide ones. Each is a complete object, ready
/// for `kubectl apply` or server-side apply.
///
/// ```
/// use compliance_report::{PolicyReportApi, Report, policy_reports};
/// # fn demo(report: &Report) {
/// for object in policy_reports(report, PolicyReportApi::WgPolicy) {
///     println!("{} {}", object["kind"], object["metadata"]["name"]);
/// }
/// # }
/// ```
pub fn policy_reports(report: &Report, api: PolicyReportApi) -> Vec<Value> {
    let controls = controls_by_check(report);
    // Namespace (None: cluster-wide) -> results, in a stable order.
    let mut groups: BTreeMap<Option<&str>, Vec<(&Evidence, Value)>> = BTreeMap::new();
    for e in &report.evidence {
        groups.entry(namespace_of(e)).or_default().push((e, result(e, controls.get(&e.check_id))));
    }
    let mut objects = Vec::new();
    // `None` sorts first in a BTreeMap; cluster-wide reports go last.
    let (cluster, namespaced): (Vec<_>, Vec<_>) = groups.into_iter().partition(|(ns, _)| ns.is_none());
    for (namespace, mut results) in namespaced.into_iter().chain(cluster) {
        results.sort_by(|(a, _), (b, _)| {
            (&a.resource.kind, &a.resource.name, &a.resource.id, &a.check_id).cmp(&(
                &b.resource.kind,
                &b.resource.name,
                &b.resource.id,
                &b.check_id,
            ))
        });
        for (part, chunk) in results.chunks(RESULTS_PER_REPORT).enumerate() {
            let name = if part == 0 { SOURCE.to_owned() } else { format!("{SOURCE}-{}", part + 1) };
            let results: Vec<Value> = chunk.iter().map(|(_, r)| r.clone()).collect();
            objects.push(report_object(api, namespace, &name, report, results));
        }
    }
    objects
}

/// The reports as one `v1` `List`, the form `kubectl apply -f` takes.
pub(super) fn policy_report_list(report: &Report, api: PolicyReportApi) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": policy_reports(report, api)})
}

fn report_object(
    api: PolicyReportApi,
    namespace: Option<&str>,
    name: &str,
    report: &Report,
    results: Vec<Value>,
) -> Value {
    let mut summary = BTreeMap::from([("pass", 0u64), ("fail", 0), ("warn", 0), ("error", 0), ("skip", 0)]);
    for r in &results {
        if let Some(n) = r["result"].as_str().and_then(|k| summary.get_mut(k)) {
            *n += 1;
        }
    }
    let mut metadata = json!({
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": SOURCE},
        "annotations": {"compliance-rs.io/run-id": report.run_id.to_string()},
    });
    let kind = match namespace {
        Some(ns) => {
            metadata["namespace"] = json!(ns);
            api.kind()
        }
        None => api.cluster_kind(),
    };
    let mut object = json!({
        "apiVersion": api.api_version(),
        "kind": kind,
        "metadata": metadata,
    });
    if api == PolicyReportApi::OpenReports {
        object["source"] = json!(SOURCE);
    }
    object["summary"] = json!(summary);
    object["results"] = Value::Array(results);
    object
}

/// The namespace whose report holds `e`; `None` for the cluster-wide one.
fn namespace_of(e: &Evidence) -> Option<&str> {
    if e.resource.provider != "k8s" || !namespaced(&e.resource.kind) {
        return None;
    }
    Some(e.resource.namespace.as_deref().unwrap_or("default"))
}

/// The workload kinds this tool judges are all namespaced; anything else is
/// treated as cluster-scoped.
fn namespaced(kind: &str) -> bool {
    api_version_of(kind).is_some()
}

fn api_version_of(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" | "ReplicationController" => Some("v1"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => Some("apps/v1"),
        "Job" | "CronJob" => Some("batch/v1"),
        _ => None,
    }
}

fn result(e: &Evidence, controls: Option<&Vec<(&str, &str)>>) -> Value {
    let outcome = match (e.status, e.waiver.is_some()) {
        (Status::Pass, _) => "pass",
        (Status::Fail, false) => "fail",
        // Accepted risk: not a failure to act on, and not a pass either.
        (Status::Fail, true) => "skip",
        (Status::Error, _) => "error",
        (Status::NotApplicable, _) => "skip",
    };
    let mut properties = Map::new();
    // Framework id -> its controls, comma-separated: properties are strings.
    let mut by_framework: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (framework, control) in controls.into_iter().flatten() {
        by_framework.entry(framework).or_default().push(control);
    }
    for (framework, list) in by_framework {
        properties.insert(framework.to_owned(), json!(list.join(",")));
    }
    if let Some(file) = &e.resource.file {
        let location = e.resource.line.map_or_else(|| file.clone(), |l| format!("{file}:{l}"));
        properties.insert("file".into(), json!(location));
    }
    if let Some(w) = &e.waiver {
        properties.insert("waiver".into(), json!(w.id));
        properties.insert("waiver_expires".into(), json!(w.expires.to_rfc3339()));
    }
    if e.status == Status::NotApplicable {
        properties.insert("not_applicable".into(), json!("true"));
    }
    let mut resource = Map::new();
    match api_version_of(&e.resource.kind).filter(|_| e.resource.provider == "k8s") {
        Some(api_version) => {
            resource.insert("apiVersion".into(), json!(api_version));
            resource.insert("kind".into(), json!(e.resource.kind));
            resource.insert("name".into(), json!(e.resource.name));
            resource.insert("namespace".into(), json!(e.resource.namespace.as_deref().unwrap_or("default")));
        }
        None => {
            // Not a Kubernetes object: the resource is named in properties.
            properties.insert("resource.provider".into(), json!(e.resource.provider));
            properties.insert("resource.kind".into(), json!(e.resource.kind));
            properties.insert("resource.id".into(), json!(e.resource.id));
            for (key, value) in [("account", &e.resource.account), ("region", &e.resource.region)] {
                if let Some(value) = value {
                    properties.insert(format!("resource.{key}"), json!(value));
                }
            }
        }
    }
    if let Some(cluster) = &e.resource.cluster {
        properties.insert("cluster".into(), json!(cluster));
    }
    let mut result = json!({
        "policy": e.check_id.as_str(),
        "source": SOURCE,
        "result": outcome,
        "severity": e.severity.as_str(),
        "scored": true,
        "message": bounded(&e.message),
        "timestamp": {
            "seconds": e.observed_at.timestamp(),
            "nanos": e.observed_at.timestamp_subsec_nanos(),
        },
        "properties": properties,
    });
    if let Some((category, _)) = e.check_id.as_str().split_once('.') {
        result["category"] = json!(category);
    }
    if !resource.is_empty() {
        result["resources"] = json!([resource]);
    }
    result
}

fn bounded(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

/// Check id -> every (framework id, control id) it supports.
pub(super) fn controls_by_check(report: &Report) -> HashMap<&CheckId, Vec<(&str, &str)>> {
    let mut map: HashMap<&CheckId, Vec<(&str, &str)>> = HashMap::new();
    for f in &report.frameworks {
        for c in &f.controls {
            for check in &c.checks {
                map.entry(check).or_default().push((f.id.as_str(), c.id.as_str()));
            }
        }
    }
    map
}
