//! Per-target results: evidence counts, gaps and a score per framework for
//! each AWS account, AWS region and Kubernetes cluster a run reached.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use compliance_core::target::{aws_account_id, aws_region_id, k8s_cluster_id};
use compliance_core::{CheckId, Evidence, Framework, Gap, Status, Target, TargetKind};
use serde::{Deserialize, Serialize};

/// One target's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetResult {
    /// What it is.
    pub kind: TargetKind,
    /// `aws:<account>`, `aws:<account>:<region>`, `k8s:<context>`.
    pub id: String,
    /// A name for people, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Passing evidence (an account counts its regions' too).
    pub passed: usize,
    /// Unwaived failures.
    pub failed: usize,
    /// Waived failures.
    pub waived: usize,
    /// Evidence that could not be judged.
    pub errors: usize,
    /// Not applicable.
    pub not_applicable: usize,
    /// Sources of it that could not be read.
    pub gaps: usize,
    /// Passed over assessed controls per framework id, on its evidence
    /// alone; absent when none of its evidence assesses the framework.
    pub scores: BTreeMap<String, f64>,
}

impl TargetResult {
    /// The target it scores, with its name and tags.
    pub fn target(&self) -> Target {
        let mut target = Target::new(self.kind, self.id.clone()).with_tags(self.tags.clone());
        target.name.clone_from(&self.name);
        target
    }
}

/// The key of a target in the maps below.
fn key_of(kind: TargetKind, id: &str) -> (TargetKind, String) {
    (kind, id.to_owned())
}

/// The targets of a run: those its collectors listed, and those its
/// evidence and gaps name, worst first (unwaived failures, then errors
/// and gaps, then id).
pub fn target_results(
    listed: &[Target],
    evidence: &[Evidence],
    gaps: &[Gap],
    frameworks: &[Arc<dyn Framework>],
) -> Vec<TargetResult> {
    let mut targets: BTreeMap<(TargetKind, String), Target> =
        listed.iter().map(|t| (key_of(t.kind, &t.id), t.clone())).collect();
    // Evidence per target: a regional resource counts for its region and its account.
    let mut members: HashMap<(TargetKind, String), Vec<&Evidence>> = HashMap::new();
    for e in evidence {
        let r = &e.resource;
        if let Some(cluster) = &r.cluster {
            let id = k8s_cluster_id(cluster);
            targets.entry(key_of(TargetKind::K8sCluster, &id)).or_insert_with(|| Target::k8s_cluster(cluster));
            members.entry(key_of(TargetKind::K8sCluster, &id)).or_default().push(e);
        } else if let Some(account) = &r.account {
            let id = aws_account_id(account);
            targets.entry(key_of(TargetKind::AwsAccount, &id)).or_insert_with(|| Target::aws_account(account));
            members.entry(key_of(TargetKind::AwsAccount, &id)).or_default().push(e);
            if let Some(region) = &r.region {
                let id = aws_region_id(account, region);
                targets
                    .entry(key_of(TargetKind::AwsRegion, &id))
                    .or_insert_with(|| Target::aws_region(account, region));
                members.entry(key_of(TargetKind::AwsRegion, &id)).or_default().push(e);
            }
        }
    }
    // A target only a gap names (a context that could not be set up) is listed too.
    for target in gaps.iter().filter_map(|g| g.target.as_deref()).filter_map(Target::from_id) {
        targets.entry(key_of(target.kind, &target.id)).or_insert(target);
    }
    let mut results: Vec<TargetResult> = targets
        .into_values()
        .map(|t| {
            let list = members.get(&key_of(t.kind, &t.id)).map(Vec::as_slice).unwrap_or_default();
            let count = |s: Status, waived: Option<bool>| {
                list.iter().filter(|e| e.status == s && waived.is_none_or(|w| e.waiver.is_some() == w)).count()
            };
            // An account's gaps include its regions' (`aws:<account>:<region>`).
            let regions = format!("{}:", t.id);
            let gap_count = gaps
                .iter()
                .filter_map(|g| g.target.as_deref())
                .filter(|g| *g == t.id || (t.kind == TargetKind::AwsAccount && g.starts_with(&regions)))
                .count();
            let mut by_check: HashMap<&CheckId, Vec<&Evidence>> = HashMap::new();
            for e in list {
                by_check.entry(&e.check_id).or_default().push(e);
            }
            let scores = frameworks
                .iter()
                .filter_map(|f| {
                    let result = crate::model::framework_result(f.as_ref(), &by_check);
                    result.score_percentage.map(|s| (result.id, s))
                })
                .collect();
            TargetResult {
                kind: t.kind,
                id: t.id,
                name: t.name,
                tags: t.tags,
                passed: count(Status::Pass, None),
                failed: count(Status::Fail, Some(false)),
                waived: count(Status::Fail, Some(true)),
                errors: count(Status::Error, None),
                not_applicable: count(Status::NotApplicable, None),
                gaps: gap_count,
                scores,
            }
        })
        .collect();
    results.sort_by(|a, b| {
        b.failed.cmp(&a.failed).then((b.errors + b.gaps).cmp(&(a.errors + a.gaps))).then(a.id.cmp(&b.id))
    });
    results
}

#[cfg(test)]
mod tests {
    use compliance_core::{Check, Control, FrameworkDef, ResourceRef, Severity};

    use super::*;

    #[test]
    fn accounts_count_their_regions_and_the_worst_comes_first() -> compliance_core::Result<()> {
        let check = Check::new("aws.s3.versioning", "v", Severity::Medium, "AWS::S3::Bucket")?;
        let framework: Arc<dyn Framework> =
            Arc::new(FrameworkDef::new("f", "F", "1", vec![Control::new("C-1", "c", vec![check.id.clone()])]));
        let at = |account: &str, region: Option<&str>, status: Status| {
            let r = ResourceRef::new("aws", "AWS::S3::Bucket", format!("{account}-{region:?}-{status}"), "b")
                .with_account_region(Some(account.into()), region.map(str::to_owned));
            Evidence::new(&check, r, status, "")
        };
        let evidence = vec![
            at("111111111111", None, Status::Pass),
            at("111111111111", Some("eu-west-1"), Status::Pass),
            at("222222222222", Some("eu-west-1"), Status::Fail),
        ];
        let listed = [Target::aws_account("333333333333").named("refused")];
        let gaps = [Gap::source("aws account 333333333333", compliance_core::GapKind::Denied, "no")
            .with_target("aws:333333333333")];
        let results = target_results(&listed, &evidence, &gaps, &[framework]);
        let ids: Vec<&str> = results.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "aws:222222222222",
                "aws:222222222222:eu-west-1",
                "aws:333333333333",
                "aws:111111111111",
                "aws:111111111111:eu-west-1"
            ]
        );
        let first = &results[3];
        assert_eq!((first.passed, first.failed), (2, 0), "an account counts its regions");
        assert_eq!(first.scores.get("f"), Some(&100.0));
        assert_eq!(results[0].scores.get("f"), Some(&0.0));
        let refused = &results[2];
        assert_eq!((refused.gaps, refused.name.as_deref(), refused.scores.is_empty()), (1, Some("refused"), true));
        Ok(())
    }
}
