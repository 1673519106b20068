//! Conformance packs: which pack each rule belongs to, the rule's compliance
//! in the pack, and the controls the pack declares for it.

use std::collections::BTreeMap;

use compliance_core::{CheckId, DeclaredControl, Gap, GapKind};
use serde_json::{Value, json};
use tracing::info;

use super::api::{ConfigApi, ConfigRule};
use crate::api::ApiError;

/// One pack a rule belongs to.
#[derive(Clone, Debug)]
struct Membership {
    pack: String,
    /// The rule's `ComplianceType` in the pack.
    compliance: String,
    controls: Vec<String>,
}

/// The packs of the account and region, as far as they could be read.
#[derive(Debug, Default)]
pub(super) struct Packs {
    /// Rule name -> the packs it belongs to.
    membership: BTreeMap<String, Vec<Membership>>,
    /// Controls declared for checks, for the run's report.
    pub(super) declared: Vec<DeclaredControl>,
}

fn gap(what: String, e: &ApiError) -> Gap {
    let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
    Gap::source(what, kind, e.explain())
}

impl Packs {
    /// Reads every pack (every page of each call) for the rules `wanted`
    /// (the listed rules whose check the scope wants, with that check's
    /// id). A call that fails is a gap; the rules' results are read per
    /// rule either way, so only the pack's membership and controls are lost.
    pub(super) async fn read(
        api: &dyn ConfigApi,
        wanted: &BTreeMap<&str, (&ConfigRule, CheckId)>,
        gaps: &mut Vec<Gap>,
    ) -> Self {
        let mut packs = Packs::default();
        let names = match api.conformance_packs().await {
            Ok(names) => names,
            Err(e) => {
                gaps.push(gap("AWS Config conformance packs".into(), &e));
                return packs;
            }
        };
        for pack in &names {
            let rules = match api.pack_rules(pack).await {
                Ok(rules) => rules,
                Err(e) => {
                    gaps.push(gap(format!("AWS Config conformance pack {pack}"), &e));
                    continue;
                }
            };
            let unnamed = rules.iter().filter(|r| r.rule.is_empty()).count();
            if unnamed > 0 {
                let reason = format!("{unnamed} of its rules came without a name: their controls are not known");
                gaps.push(Gap::source(format!("AWS Config conformance pack {pack}"), GapKind::Unreadable, reason));
            }
            for r in rules {
                let Some((_, check)) = wanted.get(r.rule.as_str()) else { continue };
                // One declaration per check and control: the first pack that declares it is named.
                for control in &r.controls {
                    if !packs.declared.iter().any(|d| &d.check == check && &d.control == control) {
                        let source = format!("AWS Config conformance pack {pack} (rule {})", r.rule);
                        packs.declared.push(DeclaredControl::new(check.clone(), control.clone(), source));
                    }
                }
                let membership = Membership { pack: pack.clone(), compliance: r.compliance, controls: r.controls };
                packs.membership.entry(r.rule).or_default().push(membership);
            }
        }
        info!(packs = names.len(), rules = packs.membership.len(), "AWS Config conformance packs read");
        packs
    }

    /// The packs a rule belongs to, for its evidence's details (`null` when none).
    pub(super) fn details_of(&self, rule: &str) -> Value {
        match self.membership.get(rule) {
            Some(packs) => json!(
                packs
                    .iter()
                    .map(|m| json!({ "name": m.pack, "compliance_type": m.compliance, "controls": m.controls }))
                    .collect::<Vec<_>>()
            ),
            None => Value::Null,
        }
    }
}
