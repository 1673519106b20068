//! The in-memory evidence store, and the behaviour every store must have.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;

use super::world::sample_check;
use crate::evidence::{Evidence, Status};
use crate::remediation::{Mode, RemediationOutcome, RemediationPlan, Risk};
use crate::resource::ResourceRef;

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

    /// Runs `f` on the stored records, to tamper with them in tests (the
    /// stored head stays as it was).
    pub fn tamper(&self, f: impl FnOnce(&mut Vec<crate::store::Record>)) {
        f(&mut self.records().0);
    }

    /// Like [`tamper`](Self::tamper), and the head becomes the last record:
    /// what someone who rewrites the whole database does.
    pub fn rewrite(&self, f: impl FnOnce(&mut Vec<crate::store::Record>)) {
        let mut state = self.records();
        f(&mut state.0);
        state.1 = state.0.last().map_or_else(crate::store::ChainHead::default, |r| crate::store::ChainHead {
            seq: r.seq,
            hash: r.hash.clone(),
        });
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

    async fn append_if_head(
        &self,
        expected: &crate::store::ChainHead,
        records: Vec<crate::store::NewRecord>,
    ) -> std::result::Result<Option<Vec<crate::store::Record>>, crate::store::StoreError> {
        let mut state = self.records();
        if state.1 != *expected {
            return Ok(None);
        }
        let (sealed, head) = crate::store::seal_all(&state.1, records);
        state.0.extend(sealed.iter().cloned());
        state.1 = head;
        Ok(Some(sealed))
    }

    async fn head(&self) -> std::result::Result<crate::store::ChainHead, crate::store::StoreError> {
        Ok(self.records().1.clone())
    }

    async fn records_after(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> std::result::Result<Vec<crate::store::Record>, crate::store::StoreError> {
        Ok(self.records().0.iter().filter(|r| r.seq > after_seq).take(limit).cloned().collect())
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
    use crate::framework::{Control, Framework, FrameworkDef};
    let check = sample_check("demo.db.backups").map_err(crate::store::StoreError::query)?;
    // A control mapping too, so that `run_controls` has rows to check.
    let framework: Arc<dyn Framework> = Arc::new(FrameworkDef::new(
        "demo-fw",
        "Demo framework",
        "1",
        vec![Control::new("D-1", "Backups are taken", vec![check.id.clone()])],
    ));
    for i in 0..runs {
        let evidence = (0..3)
            .map(|n| {
                let db = ResourceRef::new("demo", "DB", format!("db-{n}"), "db");
                Evidence::new(&check, db, Status::Pass, format!("run {i}"))
            })
            .collect();
        let run = crate::engine::Run::from_evidence(vec![check.clone()], evidence);
        store.append_run(&run, std::slice::from_ref(&framework), &[], "test").await?;
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
    // The second run's source declared IB-1 for the encryption check too (a conformance pack would).
    let mut second = run_with(true);
    second.declared_controls = vec![crate::DeclaredControl::new(other.id.clone(), "IB-1", "a pack")];
    second.targets = vec![crate::Target::aws_account("111122223333").named("payments")];
    store.append_run(&second, std::slice::from_ref(&framework), &[], "test").await.map_err(e)?;

    let runs = store.runs(None, None).await.map_err(e)?;
    if runs.len() != 2 || runs[0].id != first.id.to_string() {
        return fail("runs: expected both runs, oldest first");
    }
    if !runs[0].declared_controls.is_empty() || runs[1].declared_controls != second.declared_controls {
        return fail("runs: a run's declared controls do not read back");
    }
    if runs[1].targets != second.targets {
        return fail("runs: a run's targets do not read back");
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
    let declared_for_it = control.iter().filter(|c| c.check_id == other.id).count();
    if control.len() != 5 || declared_for_it != 1 {
        return fail(
            "control_evidence: expected the 4 backup evidence of IB-1 and the encryption evidence declared for it",
        );
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

    let head = store.head().await.map_err(e)?;
    let (mut after, mut read) = (i64::MIN, Vec::new());
    loop {
        let page = store.records_after(after, 3).await.map_err(e)?;
        let Some(last) = page.last().map(|r| r.seq) else { break };
        if page.len() > 3 {
            return fail("records_after: more records than the limit");
        }
        read.extend(page);
        after = last;
    }
    let in_order = read.iter().enumerate().all(|(i, r)| r.seq == i as i64 + 1);
    if !in_order || read.last().map(|r| (r.seq, r.hash.clone())) != Some((head.seq, head.hash.clone())) {
        return fail("records_after: pages do not give the whole chain in order, ending at the head");
    }
    if store.records_after(head.seq - 2, 10).await.map_err(e)?.len() != 2 {
        return fail("records_after: expected the last two records");
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
