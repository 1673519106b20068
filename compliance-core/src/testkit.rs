//! In-memory collector and remediator, and the conformance suite that every
//! collector and remediator implementation runs in its own tests.
//!
//! Enabled by the `testkit` feature. The conformance functions return
//! [`Error::Conformance`] naming the rule that was broken, so a test can
//! simply `?` them.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;

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
        let check = self.checks.iter().find(|c| c.id == plan.check_id).ok_or_else(|| Error::Remediation {
            remediator: self.name.clone(),
            reason: format!("does not fix {}", plan.check_id),
        })?;
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
    let checks = collector.checks();
    if checks.is_empty() {
        return Err(broken("declares checks", "checks() is empty"));
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
    let before = Utc::now();
    let collection = collector.collect(scope).await?;
    let after = Utc::now();
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

/// An evidence store in memory: the same record chain as the database
/// backends, for tests and for services that keep history elsewhere.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<(Vec<crate::store::Record>, crate::store::ChainHead)>,
}

impl InMemoryStore {
    fn records(&self) -> MutexGuard<'_, (Vec<crate::store::Record>, crate::store::ChainHead)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the stored records, to tamper with them in tests.
    pub fn tamper(&self, f: impl FnOnce(&mut Vec<crate::store::Record>)) {
        f(&mut self.records().0);
    }
}

#[async_trait]
impl crate::store::EvidenceStore for InMemoryStore {
    async fn append(
        &self,
        records: Vec<crate::store::NewRecord>,
    ) -> std::result::Result<Vec<crate::store::Record>, crate::store::StoreError> {
        let mut state = self.records();
        let (sealed, head) = crate::store::seal_all(&state.1, records);
        state.0.extend(sealed.iter().cloned());
        state.1 = head;
        Ok(sealed)
    }

    async fn runs(
        &self,
        from: Option<chrono::DateTime<Utc>>,
        to: Option<chrono::DateTime<Utc>>,
    ) -> std::result::Result<Vec<crate::store::StoredRun>, crate::store::StoreError> {
        let state = self.records();
        Ok(state
            .0
            .iter()
            .filter(|r| r.kind == crate::store::RecordKind::Run)
            .filter_map(crate::store::StoredRun::from_record)
            .filter(|r| from.is_none_or(|f| r.started_at >= f) && to.is_none_or(|t| r.started_at < t))
            .collect())
    }

    async fn run_evidence(&self, run_id: &str) -> std::result::Result<Vec<Evidence>, crate::store::StoreError> {
        let state = self.records();
        state
            .0
            .iter()
            .filter(|r| r.kind == crate::store::RecordKind::Evidence && r.index.run_id.as_deref() == Some(run_id))
            .map(crate::store::evidence_of)
            .collect()
    }

    async fn latest(&self) -> std::result::Result<Vec<Evidence>, crate::store::StoreError> {
        let state = self.records();
        let mut latest: BTreeMap<(Option<String>, Option<String>), &crate::store::Record> = BTreeMap::new();
        for r in state.0.iter().filter(|r| r.kind == crate::store::RecordKind::Evidence) {
            latest.insert((r.index.check_id.clone(), r.index.subject.clone()), r);
        }
        latest.values().map(|r| crate::store::evidence_of(r)).collect()
    }

    async fn history(&self, resource_id: &str) -> std::result::Result<Vec<Evidence>, crate::store::StoreError> {
        let state = self.records();
        state
            .0
            .iter()
            .filter(|r| r.kind == crate::store::RecordKind::Evidence && r.index.subject.as_deref() == Some(resource_id))
            .map(crate::store::evidence_of)
            .collect()
    }

    async fn control_evidence(
        &self,
        framework: &str,
        control: &str,
        from: chrono::DateTime<Utc>,
        to: chrono::DateTime<Utc>,
    ) -> std::result::Result<Vec<Evidence>, crate::store::StoreError> {
        let state = self.records();
        let mut checks_per_run: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for r in state.0.iter().filter(|r| r.kind == crate::store::RecordKind::Controls) {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            let checks = body["frameworks"][framework][control]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            checks_per_run.insert(r.index.run_id.clone().unwrap_or_default(), checks);
        }
        let (from, to) = (from.timestamp_micros(), to.timestamp_micros());
        state
            .0
            .iter()
            .filter(|r| r.kind == crate::store::RecordKind::Evidence)
            .filter(|r| r.index.at_us.is_some_and(|at| at >= from && at < to))
            .filter(|r| {
                let run = r.index.run_id.clone().unwrap_or_default();
                let check = r.index.check_id.clone().unwrap_or_default();
                checks_per_run.get(&run).is_some_and(|c| c.contains(&check))
            })
            .map(crate::store::evidence_of)
            .collect()
    }

    async fn plan(&self, id: &str) -> std::result::Result<Option<crate::store::StoredPlan>, crate::store::StoreError> {
        let state = self.records();
        let records: Vec<crate::store::Record> = state
            .0
            .iter()
            .filter(|r| {
                matches!(
                    r.kind,
                    crate::store::RecordKind::Plan
                        | crate::store::RecordKind::Decision
                        | crate::store::RecordKind::Outcome
                ) && r.index.subject.as_deref() == Some(id)
            })
            .cloned()
            .collect();
        crate::store::fold_plan(&records)
    }

    async fn plans(
        &self,
        state: Option<crate::store::PlanState>,
    ) -> std::result::Result<Vec<crate::store::StoredPlan>, crate::store::StoreError> {
        let ids: Vec<String> = self
            .records()
            .0
            .iter()
            .filter(|r| r.kind == crate::store::RecordKind::Plan)
            .filter_map(|r| r.index.subject.clone())
            .collect();
        let mut plans = Vec::new();
        for id in ids {
            if let Some(p) = self.plan(&id).await?
                && state.is_none_or(|s| s == p.state)
            {
                plans.push(p);
            }
        }
        Ok(plans)
    }

    async fn verify(&self) -> std::result::Result<crate::store::ChainReport, crate::store::StoreError> {
        let state = self.records();
        let prunes: Vec<crate::store::Record> =
            state.0.iter().filter(|r| r.kind == crate::store::RecordKind::Prune).cloned().collect();
        Ok(crate::store::verify_chain(state.0.iter().cloned(), &prunes, &state.1))
    }

    async fn prune(
        &self,
        retention: &crate::store::Retention,
    ) -> std::result::Result<crate::store::PruneReport, crate::store::StoreError> {
        let runs = self.runs(None, None).await?;
        let first_kept = retention.first_kept(&runs, Utc::now());
        if first_kept == 0 {
            return Ok(crate::store::PruneReport::default());
        }
        // Everything before the first run kept goes, as in the database backends.
        let cut = runs.get(first_kept).map_or(i64::MAX, |r| r.seq);
        let mut state = self.records();
        let removed: Vec<crate::store::Record> = state.0.iter().filter(|r| r.seq < cut).cloned().collect();
        let Some(last) = removed.last() else { return Ok(crate::store::PruneReport::default()) };
        let until = (last.seq, last.hash.clone());
        state.0.retain(|r| r.seq >= cut);
        let note = crate::store::prune_record(until.0, &until.1, first_kept, removed.len() as u64, Utc::now());
        let (sealed, head) = crate::store::seal_all(&state.1, vec![note]);
        state.0.extend(sealed);
        state.1 = head;
        Ok(crate::store::PruneReport::new(first_kept, removed.len() as u64, Some(until)))
    }
}

/// Appends `runs` runs of the same shape: three passing evidence of
/// `demo.db.backups` (on `db-0`, `db-1`, `db-2`), so each run is five
/// records (header, control mapping, three evidence) that tamper tests can
/// address by position.
pub async fn append_sample_runs(
    store: &dyn crate::store::EvidenceStore,
    runs: usize,
) -> std::result::Result<(), crate::store::StoreError> {
    let check = sample_check("demo.db.backups").map_err(crate::store::StoreError::query)?;
    for i in 0..runs {
        let evidence = (0..3)
            .map(|n| {
                let db = ResourceRef::new("demo", "DB", format!("db-{n}"), "db");
                Evidence::new(&check, db, Status::Pass, format!("run {i}"))
            })
            .collect();
        store.append_run(&crate::engine::Run::from_evidence(vec![check.clone()], evidence), &[], &[], "test").await?;
    }
    Ok(())
}

/// The behaviour every [`crate::store::EvidenceStore`] must have, on an
/// empty store: runs, queries, plans and decisions, verification and
/// pruning. Backends run it in their own tests.
pub async fn check_store(store: &dyn crate::store::EvidenceStore) -> std::result::Result<(), String> {
    use crate::framework::{Control, Framework, FrameworkDef};
    use crate::store::{EvidenceStoreExt, PlanState, Retention};
    let fail = |what: &str| Err::<(), String>(what.to_owned());
    let e = |err: crate::store::StoreError| err.to_string();
    let check = sample_check("demo.db.backups").map_err(|err| err.to_string())?;
    let other = sample_check("demo.db.encrypted").map_err(|err| err.to_string())?;
    let framework: Arc<dyn Framework> = Arc::new(FrameworkDef::new(
        "internal",
        "Internal",
        "1",
        vec![Control::new("IB-1", "Backups", vec![check.id.clone()])],
    ));
    let run_with = |passing: bool| {
        let evidence = vec![
            Evidence::new(
                &check,
                ResourceRef::new("demo", "DB", "db-1", "db-1"),
                if passing { Status::Pass } else { Status::Fail },
                "backups",
            ),
            Evidence::new(&other, ResourceRef::new("demo", "DB", "db-1", "db-1"), Status::Pass, "encrypted"),
            Evidence::new(&check, ResourceRef::new("demo", "DB", "db-2", "db-2"), Status::Pass, "backups"),
        ];
        crate::engine::Run::from_evidence(vec![check.clone(), other.clone()], evidence)
    };
    let first = run_with(false);
    let stored = store.append_run(&first, std::slice::from_ref(&framework), &[], "test").await.map_err(e)?;
    if stored.id != first.id.to_string() || stored.evidence != 3 || stored.failures != 1 {
        return fail("append_run: the stored run does not describe the run");
    }
    let second = run_with(true);
    store.append_run(&second, std::slice::from_ref(&framework), &[], "test").await.map_err(e)?;

    let runs = store.runs(None, None).await.map_err(e)?;
    if runs.len() != 2 || runs[0].id != first.id.to_string() {
        return fail("runs: expected both runs, oldest first");
    }
    if store.run_evidence(&first.id.to_string()).await.map_err(e)? != first.evidence {
        return fail("run_evidence: evidence does not read back identical");
    }
    let latest = store.latest().await.map_err(e)?;
    if latest.len() != 3 || latest.iter().any(|l| l.status != Status::Pass) {
        return fail("latest: expected the second run's 3 passing evidence");
    }
    let history = store.history("db-1").await.map_err(e)?;
    if history.len() != 4 {
        return fail("history: expected 4 evidence about db-1");
    }
    let day = chrono::Duration::days(1);
    let control = store.control_evidence("internal", "IB-1", Utc::now() - day, Utc::now() + day).await.map_err(e)?;
    if control.len() != 4 || control.iter().any(|c| c.check_id != check.id) {
        return fail("control_evidence: expected the 4 backup evidence of IB-1");
    }
    if !store.control_evidence("internal", "IB-1", Utc::now() + day, Utc::now() + day * 2).await.map_err(e)?.is_empty()
    {
        return fail("control_evidence: the time range is not applied");
    }

    let failing = &first.evidence[0];
    let plan =
        RemediationPlan::new("demo", failing, "turn backups on", Vec::new(), Risk::High, serde_json::Value::Null);
    let saved = store.save_plan(&plan, Some(&first.id.to_string())).await.map_err(e)?;
    if saved.state != PlanState::Pending || store.plans(Some(PlanState::Pending)).await.map_err(e)?.len() != 1 {
        return fail("save_plan: the plan is not pending");
    }
    let approved = store.decide(&plan.id, true, "alice@example.com", "change 42").await.map_err(e)?;
    if approved.state != PlanState::Approved
        || approved.decision.as_ref().map(|d| d.by.as_str()) != Some("alice@example.com")
    {
        return fail("decide: approval not recorded with who");
    }
    if store.decide(&plan.id, false, "bob", "").await.is_ok() {
        return fail("decide: a decided plan was decided again");
    }
    let outcome = RemediationOutcome::new(&plan, Mode::Apply, true, "done");
    if store.record_outcome(&outcome).await.map_err(e)?.state != PlanState::Applied {
        return fail("record_outcome: the plan is not applied");
    }

    let report = store.verify().await.map_err(e)?;
    if !report.is_intact() || report.runs != 2 {
        return fail(&format!("verify: an untouched chain does not verify: {:?}", report.problem));
    }
    let pruned = store.prune(&Retention::runs(1)).await.map_err(e)?;
    if pruned.runs != 1 || store.runs(None, None).await.map_err(e)?.len() != 1 {
        return fail("prune: expected one run removed");
    }
    let report = store.verify().await.map_err(e)?;
    if !report.is_intact() {
        return fail(&format!("verify after prune: {:?}", report.problem));
    }
    Ok(())
}
