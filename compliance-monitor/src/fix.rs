//! Remediation by policy: every fix goes through a stored plan, and every
//! applied plan's outcome is recorded.

use compliance_core::store::{EvidenceStore, EvidenceStoreExt, PlanState, StoredPlan};
use compliance_core::{
    Approval, Approver, Engine, Evidence, Mode, RejectAll, RemediationOutcome, RemediationPlan, Risk,
};
use tracing::{error, info, warn};

use crate::settings::{RemediationConfig, RemediationMode};

/// Applies a stored plan and records its outcome: a plan that fails to
/// apply is recorded as failed, never left pending. `approval` is the
/// decision behind it, carried into a failed outcome.
pub async fn apply_and_record(
    engine: &Engine,
    store: &dyn EvidenceStore,
    plan: &RemediationPlan,
    approver: &dyn Approver,
    approval: Option<Approval>,
) -> Result<(StoredPlan, RemediationOutcome), compliance_core::StoreError> {
    let outcome = match engine.apply(plan, Mode::Apply, approver).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let mut failed = RemediationOutcome::new(plan, Mode::Apply, false, format!("not applied: {e}"));
            failed.approval = approval;
            failed
        }
    };
    let stored = store.record_outcome(&outcome).await?;
    Ok((stored, outcome))
}

/// Whether a stored plan still says what it will do: the plan is made again
/// from the resource as it is now, and its payload (what would be sent) and
/// changes (what people were shown) must both be the stored ones. A plan
/// whose resource changed since, or whose stored payload does not match its
/// changes, is refused with the reason; it is never applied blind.
pub async fn plan_still_holds(engine: &Engine, plan: &RemediationPlan) -> Result<(), String> {
    let check = compliance_core::Check::new(
        plan.check_id.as_str(),
        plan.check_id.as_str(),
        compliance_core::Severity::Info,
        plan.resource.kind.clone(),
    )
    .map_err(|e| e.to_string())?;
    let evidence =
        Evidence::new(&check, plan.resource.clone(), compliance_core::Status::Fail, "planned again before applying");
    match engine.plan(&evidence).await {
        Ok(Some(fresh)) if fresh.payload == plan.payload && fresh.changes == plan.changes => Ok(()),
        Ok(Some(fresh)) if fresh.payload == plan.payload => Err(format!(
            "plan {}: the changes shown ({}) are not what its payload does now ({}); make a new plan",
            plan.id,
            plan.changes.len(),
            fresh.changes.len()
        )),
        Ok(Some(_)) => Err(format!(
            "plan {}: {} changed since the plan was made (or its stored payload was altered): \
             what would be sent differs from the plan; reject it and make a new one",
            plan.id, plan.resource.id
        )),
        Ok(None) => Err(format!("plan {}: there is nothing to fix on {} any more", plan.id, plan.resource.id)),
        Err(e) => Err(format!("plan {}: cannot plan again to check it: {e}", plan.id)),
    }
}

/// Plans fixes for a run's failures by policy: `auto` applies low-risk
/// plans, everything else fixable is stored as pending. Nothing is applied
/// without a stored plan.
pub(crate) async fn remediate(
    engine: &Engine,
    store: &dyn EvidenceStore,
    policy: &RemediationConfig,
    run_id: &str,
    failing: &[Evidence],
) {
    let wanted: Vec<(&Evidence, RemediationMode)> = failing
        .iter()
        .map(|e| (e, policy.mode(e.check_id.as_str())))
        .filter(|(_, mode)| *mode != RemediationMode::Never)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let pending = match store.plans(Some(PlanState::Pending)).await {
        Ok(p) => p,
        Err(e) => {
            // Without the open plans a failure could be planned twice: plan nothing this time.
            error!("open plans not readable, no fix planned this cycle: {e}");
            return;
        }
    };
    for (evidence, mode) in wanted {
        // One open plan per check and resource: a failure seen again is not planned twice.
        if pending.iter().any(|p| p.plan.check_id == evidence.check_id && p.plan.resource.id == evidence.resource.id) {
            continue;
        }
        let plan = match engine.plan(evidence).await {
            Ok(Some(plan)) => plan,
            Ok(None) => continue,
            Err(e) => {
                warn!(check = %evidence.check_id, resource = %evidence.resource.id, "cannot plan a fix: {e}");
                continue;
            }
        };
        if let Err(e) = store.save_plan(&plan, Some(run_id)).await {
            error!("plan {} not stored, so not applied: {e}", plan.id);
            continue;
        }
        if mode == RemediationMode::Auto && plan.risk == Risk::Low {
            match apply_and_record(engine, store, &plan, &RejectAll, None).await {
                Ok((stored, outcome)) => {
                    info!(plan = %plan.id, state = stored.state.as_str(), "automatic fix: {}", outcome.message);
                }
                Err(e) => error!("outcome of plan {} not stored: {e}", plan.id),
            }
        } else {
            info!(plan = %plan.id, risk = ?plan.risk, "fix planned; waiting for `compliance remediate approve {}`", plan.id);
        }
    }
}
