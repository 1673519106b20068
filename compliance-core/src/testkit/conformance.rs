//! The conformance suite of collectors and remediators.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;

use crate::collector::{Collection, Collector, Scope};
use crate::error::{Error, Result};
use crate::evidence::{Evidence, Status};
use crate::remediation::{Mode, Remediator};

fn broken(rule: &str, detail: impl Into<String>) -> Error {
    Error::Conformance { rule: rule.to_owned(), detail: detail.into() }
}

/// Runs `collector` on `scope` and checks what every collector must do:
/// it declares its checks (unique ids, titles); every evidence names a declared
/// check with its severity, a resource with provider, kind and id, a message,
/// an object of details and an observation time within the collection; a
/// failure carries remediation guidance when the check has some; no check is
/// reported twice for one resource; gaps give a reason. Returns the collection.
pub async fn check_collector(collector: &dyn Collector, scope: &Scope) -> Result<Collection> {
    let before = Utc::now();
    let collection = collector.collect(scope).await?;
    let after = Utc::now();
    // Declared up front, or found while collecting (rules discovered in an account).
    let checks: Vec<crate::Check> = collector.checks().into_iter().chain(collection.checks.iter().cloned()).collect();
    if checks.is_empty() {
        return Err(broken("declares checks", "checks() and the collection's checks are empty"));
    }
    let mut declared = BTreeMap::new();
    for c in &checks {
        if c.title.trim().is_empty() {
            return Err(broken("checks have titles", c.id.to_string()));
        }
        if declared.insert(c.id.clone(), c).is_some() {
            return Err(broken("check ids are unique", c.id.to_string()));
        }
    }
    let mut seen = HashSet::new();
    for e in &collection.evidence {
        let Some(check) = declared.get(&e.check_id) else {
            return Err(broken("evidence names a declared check", e.check_id.to_string()));
        };
        if !scope.wants(&e.check_id) {
            return Err(broken("evidence stays within scope", e.check_id.to_string()));
        }
        if e.severity != check.severity {
            return Err(broken(
                "evidence carries its check's severity",
                format!("{} on {}", e.check_id, e.resource.id),
            ));
        }
        if e.resource.provider.is_empty() || e.resource.kind.is_empty() || e.resource.id.is_empty() {
            return Err(broken("resource has provider, kind and id", format!("{:?}", e.resource)));
        }
        if e.message.trim().is_empty() {
            return Err(broken("evidence has a message", format!("{} on {}", e.check_id, e.resource.id)));
        }
        if !e.details.is_object() {
            return Err(broken("details are an object", format!("{} on {}", e.check_id, e.resource.id)));
        }
        if e.observed_at < before - chrono::Duration::seconds(1) || e.observed_at > after {
            return Err(broken(
                "observed_at is the UTC time of the collection",
                format!("{} on {}: {}", e.check_id, e.resource.id, e.observed_at),
            ));
        }
        if e.status == Status::Fail && !check.remediation.is_empty() && e.remediation.is_none() {
            return Err(broken("failures carry remediation", format!("{} on {}", e.check_id, e.resource.id)));
        }
        if !seen.insert((e.check_id.clone(), e.resource.id.clone())) {
            return Err(broken("one evidence per check and resource", format!("{} on {}", e.check_id, e.resource.id)));
        }
    }
    for g in &collection.gaps {
        if g.reason.trim().is_empty() {
            return Err(broken("gaps give a reason", format!("{g:?}")));
        }
    }
    Ok(collection)
}

/// Checks what every remediator must do, against the real state that
/// `collector` observes: for each failure it fixes (up to `limit`), a plan
/// names the evidence's check and resource and lists changes; a dry run
/// reports nothing applied and changes nothing; apply changes the resource
/// and comes back verified as a pass; applying again is harmless and still
/// passes. Returns how many failures were remediated.
pub async fn check_remediator(
    remediator: &dyn Remediator,
    collector: &dyn Collector,
    scope: &Scope,
    limit: usize,
) -> Result<usize> {
    let fixes = remediator.fixes();
    let first = collector.collect(scope).await?;
    let targets: Vec<&Evidence> =
        first.evidence.iter().filter(|e| e.status == Status::Fail && fixes.contains(&e.check_id)).take(limit).collect();
    if targets.is_empty() {
        return Err(broken(
            "there is a failure to fix",
            "the collector found no failure of a check the remediator fixes",
        ));
    }
    let status_of = |collection: &Collection, e: &Evidence| {
        collection
            .evidence
            .iter()
            .find(|x| x.check_id == e.check_id && x.resource.id == e.resource.id)
            .map(|x| x.status)
    };
    for target in &targets {
        let plan = remediator
            .plan(target)
            .await?
            .ok_or_else(|| broken("a failure gets a plan", format!("{} on {}", target.check_id, target.resource.id)))?;
        if plan.check_id != target.check_id || plan.resource.id != target.resource.id {
            return Err(broken("the plan names the evidence's check and resource", plan.id));
        }
        if plan.changes.is_empty() {
            return Err(broken("the plan lists its changes", plan.id));
        }
        let dry = remediator.apply(&plan, Mode::DryRun).await?;
        if dry.applied || dry.mode != Mode::DryRun {
            return Err(broken("dry run reports nothing applied", plan.id));
        }
        let after_dry = collector.collect(scope).await?;
        if status_of(&after_dry, target) != Some(Status::Fail) {
            return Err(broken("dry run changes nothing", format!("{} on {}", target.check_id, target.resource.id)));
        }
        for attempt in ["apply", "apply again (idempotent)"] {
            let outcome = remediator.apply(&plan, Mode::Apply).await?;
            let verified = outcome.verification.as_ref().map(|v| v.status);
            if verified != Some(Status::Pass) {
                return Err(broken(
                    "apply is verified as a pass",
                    format!("{attempt}: {} on {}: {verified:?}", target.check_id, target.resource.id),
                ));
            }
            let observed = collector.collect(scope).await?;
            if status_of(&observed, target) != Some(Status::Pass) {
                return Err(broken(
                    "apply fixes the resource",
                    format!("{attempt}: {} on {}", target.check_id, target.resource.id),
                ));
            }
        }
    }
    Ok(targets.len())
}
