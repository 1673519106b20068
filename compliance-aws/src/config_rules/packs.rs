//! Conformance packs: which pack each rule belongs to, the controls the pack
//! declares for it, and the results of its rules, read through the pack.

use std::collections::{BTreeMap, BTreeSet};

use compliance_core::{CheckId, DeclaredControl, Gap, GapKind};
use serde_json::{Value, json};
use tracing::info;

use super::api::{ConfigApi, ConfigRule, EvaluationResult};
use crate::api::ApiError;

/// The packs of the account and region, as far as they could be read.
#[derive(Debug, Default)]
pub(super) struct Packs {
    /// Rule name -> the packs it belongs to, with the controls each declares.
    membership: BTreeMap<String, Vec<(String, Vec<String>)>>,
    /// Rule name -> its results, for rules of packs whose results were all read.
    results: BTreeMap<String, Vec<EvaluationResult>>,
    /// Controls declared for checks, for the run's report.
    pub(super) declared: Vec<DeclaredControl>,
}

fn gap(what: String, e: &ApiError) -> Gap {
    let kind = if e.is_denied() { GapKind::Denied } else { GapKind::Unreadable };
    Gap::source(what, kind, e.explain())
}

impl Packs {
    /// Reads every pack (every page of each call) for the rules `wanted`
    /// (the listed rules whose check the scope wants, with that check's id).
    /// A call that fails is a gap; the rules it concerned are then read one
    /// by one as any other rule, so no result is lost.
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
            let mut ours = BTreeSet::new();
            for r in rules {
                let Some((_, check)) = wanted.get(r.rule.as_str()) else { continue };
                for control in &r.controls {
                    let source = format!("AWS Config conformance pack {pack} (rule {})", r.rule);
                    let declared = DeclaredControl::new(check.clone(), control.clone(), source);
                    if !packs.declared.contains(&declared) {
                        packs.declared.push(declared);
                    }
                }
                packs.membership.entry(r.rule.clone()).or_default().push((pack.clone(), r.controls));
                ours.insert(r.rule);
            }
            if ours.is_empty() {
                continue;
            }
            match read_results(api, pack, &ours).await {
                Ok(by_rule) => {
                    for rule in ours {
                        // A rule in two packs: its results once.
                        let results = by_rule.get(&rule).cloned().unwrap_or_default();
                        packs.results.entry(rule).or_insert(results);
                    }
                }
                Err(e) => gaps.push(gap(format!("AWS Config conformance pack {pack} results"), &e)),
            }
        }
        info!(packs = names.len(), rules = packs.membership.len(), "AWS Config conformance packs read");
        packs
    }

    /// The results of a rule read through its pack, if they were.
    pub(super) fn take_results(&mut self, rule: &str) -> Option<Vec<EvaluationResult>> {
        self.results.remove(rule)
    }

    /// The packs a rule belongs to, for its evidence's details (`null` when none).
    pub(super) fn details_of(&self, rule: &str) -> Value {
        match self.membership.get(rule) {
            Some(packs) => {
                json!(
                    packs
                        .iter()
                        .map(|(name, controls)| json!({ "name": name, "controls": controls }))
                        .collect::<Vec<_>>()
                )
            }
            None => Value::Null,
        }
    }
}

/// Every page of a pack's results, by rule (only the rules in `ours`).
async fn read_results(
    api: &dyn ConfigApi,
    pack: &str,
    ours: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<EvaluationResult>>, ApiError> {
    let mut by_rule: BTreeMap<String, Vec<EvaluationResult>> = BTreeMap::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let (results, next) = api.pack_results_page(pack, token.take()).await?;
        pages += 1;
        for (rule, result) in results.into_iter().filter(|(rule, _)| ours.contains(rule)) {
            by_rule.entry(rule).or_default().push(result);
        }
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    info!(pack, pages, "AWS Config conformance pack results read");
    Ok(by_rule)
}
