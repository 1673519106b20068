//! The live remediator: Deployments, StatefulSets and DaemonSets patched
//! through the API server, dry run by default.

use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::{
    CheckId, Error, Evidence, Mode, RemediationOutcome, RemediationPlan, Remediator, ResourceRef, Scope, Status,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

use super::{FixDefaults, fixable, plan_patch, risk_of, wrap_for_object};
use crate::config::CheckConfig;
use crate::rules::evaluate;
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
    /// The cluster `client` talks to, as evidence names it: evidence from
    /// any other cluster is refused.
    cluster: Option<String>,
    /// Its name: `k8s-workloads`, or `k8s-workloads:<cluster>` among several.
    name: String,
}

impl WorkloadRemediator {
    /// A remediator using `client`, with the default fix values.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            defaults: Arc::new(FixDefaults::default()),
            checks: Arc::new(CheckConfig::default()),
            cluster: None,
            name: "k8s-workloads".into(),
        }
    }

    /// Named after its cluster (`k8s-workloads:<cluster>`), so that plans
    /// made by one of several clusters' remediators go back to it.
    pub fn named_after_cluster(mut self) -> Self {
        if let Some(cluster) = &self.cluster {
            self.name = format!("k8s-workloads:{cluster}");
        }
        self
    }

    /// Names the cluster `client` talks to (the context name the collector
    /// gives evidence). Plans and applies for evidence of another cluster,
    /// or of none, are then refused: a kubeconfig pointed elsewhere since
    /// the scan must not receive another cluster's fix.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    fn same_cluster(&self, resource: &compliance_core::ResourceRef) -> compliance_core::Result<()> {
        match (&self.cluster, &resource.cluster) {
            (Some(mine), Some(theirs)) if mine == theirs => Ok(()),
            (None, _) => Ok(()),
            (Some(mine), theirs) => Err(self.failure(format!(
                "{} is in cluster {}, but this remediator acts on cluster {mine}: refused",
                resource.id,
                theirs.as_deref().unwrap_or("(none named)")
            ))),
        }
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
        Error::remediation(self.name(), reason)
    }

    /// A failed API call, kept as the source.
    fn call_failed(&self, what: &str, e: kube::Error) -> Error {
        Error::remediation_from(self.name(), format!("{what}: {e}"), e)
    }

    async fn fetch(
        &self,
        resource: &ResourceRef,
    ) -> compliance_core::Result<(Api<DynamicObject>, ApiResource, Workload)> {
        let namespace =
            resource.namespace.as_deref().ok_or_else(|| self.failure(format!("{} has no namespace", resource.id)))?;
        let (api, ar) = self.api(&resource.kind, namespace).ok_or_else(|| {
            self.failure(format!(
                "{} objects are not remediated; only Deployments, StatefulSets and DaemonSets",
                resource.kind
            ))
        })?;
        let object = api.get(&resource.name).await.map_err(|e| self.call_failed(&format!("GET {}", resource.id), e))?;
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
        &self.name
    }

    fn handles(&self, evidence: &compliance_core::Evidence) -> bool {
        self.same_cluster(&evidence.resource).is_ok()
    }

    fn fixes(&self) -> Vec<CheckId> {
        crate::rules::catalogue().remediable()
    }

    async fn plan(&self, evidence: &Evidence) -> compliance_core::Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || !fixable(&evidence.check_id) {
            return Ok(None);
        }
        self.same_cluster(&evidence.resource)?;
        let (_, ar, workload) = self.fetch(&evidence.resource).await?;
        let operation = format!(
            "PATCH {} {} {}/{} (strategic merge)",
            ar.api_version,
            ar.plural,
            evidence.resource.namespace.as_deref().unwrap_or_default(),
            evidence.resource.name
        );
        let Some((pod_patch, changes)) = plan_patch(&workload, &evidence.check_id, &self.defaults, &operation) else {
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
        Ok(Some(RemediationPlan::new(self.name(), evidence, summary, changes, risk_of(&evidence.check_id), payload)))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> compliance_core::Result<RemediationOutcome> {
        self.same_cluster(&plan.resource)?;
        let (api, ar, _) = self.fetch(&plan.resource).await?;
        let mut params = PatchParams { field_manager: Some("compliance-rs".into()), ..PatchParams::default() };
        if mode == Mode::DryRun {
            params = params.dry_run();
        }
        let answer = api
            .patch(&plan.resource.name, &params, &Patch::Strategic(&plan.payload))
            .await
            .map_err(|e| self.call_failed(&format!("PATCH {}", plan.resource.id), e))?;
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
