//! A shared in-memory state, and a collector and a remediator over it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::check::{Check, CheckId, Severity};
use crate::collector::{Collection, Collector, Scope};
use crate::error::{Error, Result};
use crate::evidence::{Evidence, Status};
use crate::remediation::{Change, Mode, RemediationOutcome, RemediationPlan, Remediator, Risk};
use crate::resource::ResourceRef;

/// A check with placeholder metadata, for tests.
pub fn sample_check(id: &str) -> Result<Check> {
    Ok(Check::new(id, format!("Sample check {id}"), Severity::High, "Resource")?
        .with_rationale("Used in tests.")
        .with_remediation("Set the flag.")
        .remediable())
}

/// Per resource id, per check id: compliant (`Some(true)`), not
/// (`Some(false)`) or unreadable (`None`).
type State = BTreeMap<String, BTreeMap<String, Option<bool>>>;

/// Shared in-memory state: per resource, per check, compliant or not, or
/// unreadable. Clones share the same state.
#[derive(Clone, Debug, Default)]
pub struct World {
    state: Arc<Mutex<State>>,
}

impl World {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets whether `resource` complies with `check`.
    pub fn set(&self, resource: &str, check: &str, compliant: bool) {
        self.lock().entry(resource.into()).or_default().insert(check.into(), Some(compliant));
    }

    /// Makes `resource` unreadable for `check` (it yields `Error` evidence).
    pub fn set_unreadable(&self, resource: &str, check: &str) {
        self.lock().entry(resource.into()).or_default().insert(check.into(), None);
    }

    /// The state of `resource` for `check`.
    pub fn get(&self, resource: &str, check: &str) -> Option<Option<bool>> {
        self.lock().get(resource).and_then(|m| m.get(check)).copied()
    }

    fn snapshot(&self) -> State {
        self.lock().clone()
    }
}

fn resource(id: &str) -> ResourceRef {
    ResourceRef::new("memory", "Resource", id, id)
}

fn judge(check: &Check, id: &str, state: Option<bool>) -> Evidence {
    match state {
        Some(true) => Evidence::new(check, resource(id), Status::Pass, format!("{id} complies")),
        Some(false) => Evidence::new(check, resource(id), Status::Fail, format!("{id} does not comply"))
            .with_details(serde_json::json!({ "flag": false })),
        None => Evidence::new(check, resource(id), Status::Error, format!("{id} could not be read")),
    }
}

/// A collector over a [`World`].
#[derive(Clone, Debug)]
pub struct InMemoryCollector {
    name: String,
    checks: Vec<Check>,
    world: World,
}

impl InMemoryCollector {
    /// A collector named `name` producing evidence for `checks` from `world`.
    pub fn new(name: impl Into<String>, checks: Vec<Check>, world: World) -> Self {
        Self { name: name.into(), checks, world }
    }
}

#[async_trait]
impl Collector for InMemoryCollector {
    fn name(&self) -> &str {
        &self.name
    }

    fn checks(&self) -> Vec<Check> {
        self.checks.clone()
    }

    async fn collect(&self, scope: &Scope) -> Result<Collection> {
        let mut evidence = Vec::new();
        for (id, checks) in self.world.snapshot() {
            for check in self.checks.iter().filter(|c| scope.wants(&c.id)) {
                if let Some(state) = checks.get(check.id.as_str()) {
                    evidence.push(judge(check, &id, *state));
                }
            }
        }
        Ok(evidence.into())
    }
}

/// A remediator over a [`World`]: sets the flag of a failing resource.
#[derive(Clone, Debug)]
pub struct InMemoryRemediator {
    name: String,
    checks: Vec<Check>,
    risk: Risk,
    world: World,
}

impl InMemoryRemediator {
    /// A remediator fixing `checks` in `world`, with plans of risk `risk`.
    pub fn new(name: impl Into<String>, checks: Vec<Check>, risk: Risk, world: World) -> Self {
        Self { name: name.into(), checks, risk, world }
    }
}

#[async_trait]
impl Remediator for InMemoryRemediator {
    fn name(&self) -> &str {
        &self.name
    }

    fn fixes(&self) -> Vec<CheckId> {
        self.checks.iter().map(|c| c.id.clone()).collect()
    }

    async fn plan(&self, evidence: &Evidence) -> Result<Option<RemediationPlan>> {
        if evidence.status != Status::Fail || !self.fixes().contains(&evidence.check_id) {
            return Ok(None);
        }
        let change = Change::new(
            "memory:set",
            format!("{}/{}", evidence.resource.id, evidence.check_id),
            false.into(),
            true.into(),
        );
        Ok(Some(RemediationPlan::new(
            &self.name,
            evidence,
            format!("set {} on {}", evidence.check_id, evidence.resource.id),
            vec![change],
            self.risk,
            serde_json::json!({ "set": true }),
        )))
    }

    async fn apply(&self, plan: &RemediationPlan, mode: Mode) -> Result<RemediationOutcome> {
        let check = self
            .checks
            .iter()
            .find(|c| c.id == plan.check_id)
            .ok_or_else(|| Error::remediation(self.name.clone(), format!("does not fix {}", plan.check_id)))?;
        let before = self.world.get(&plan.resource.id, check.id.as_str());
        if mode == Mode::DryRun {
            return Ok(RemediationOutcome::new(plan, mode, false, "dry run: nothing changed")
                .with_record(serde_json::json!({ "would_set": true, "current": before })));
        }
        self.world.set(&plan.resource.id, check.id.as_str(), true);
        let after = self.world.get(&plan.resource.id, check.id.as_str()).flatten();
        Ok(RemediationOutcome::new(plan, mode, true, "flag set")
            .with_record(serde_json::json!({ "before": before, "restore": { "set": before } }))
            .with_verification(judge(check, &plan.resource.id, after)))
    }
}
