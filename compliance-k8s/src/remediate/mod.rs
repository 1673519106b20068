//! Remediation of workloads: the minimal pod-spec patch per check
//! ([`plan_patch`]), fixed copies of manifest files ([`fix_manifest`]), and
//! the live remediator (feature `cluster`).

#[cfg(feature = "cluster")]
mod live;
mod manifest;
mod patch;

#[cfg(feature = "cluster")]
pub use live::WorkloadRemediator;
pub use manifest::{ManifestFix, fix_manifest};
pub use patch::{FixDefaults, plan_patch};
#[cfg(feature = "cluster")]
pub(crate) use patch::{fixable, risk_of, wrap_for_object};

#[cfg(test)]
mod tests {
    use super::patch::merge_patch;
    use serde_json::json;

    #[test]
    fn merge_by_container_name() {
        let mut target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        merge_patch(
            &mut target,
            &json!({"spec": {"containers": [{"name": "b", "securityContext": {"runAsNonRoot": true}}]}}),
        );
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "securityContext": {"runAsNonRoot": true}}]}})
        );
    }

    /// The catalogue's `remediable` flags and the patches agree: every
    /// fixable check has a fix for a workload that fails it, and no other
    /// check does.
    #[test]
    fn the_catalogue_and_the_patches_agree_on_what_is_fixable() -> Result<(), Box<dyn std::error::Error>> {
        use compliance_core::Status;

        use super::{FixDefaults, plan_patch};
        use crate::{CheckConfig, Workload, evaluate};

        // A workload that fails every check a patch can touch.
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"template": {"spec": {"securityContext": {"runAsUser": 0},
                "containers": [{"name": "c", "image": "x:latest", "securityContext": {"allowPrivilegeEscalation": true}}]}}}});
        let workload = Workload::from_object(object)?.ok_or("a workload")?;
        let failing: Vec<_> = evaluate(
            &workload,
            compliance_core::ResourceRef::new("k8s", "Deployment", "w", "w"),
            &CheckConfig::default(),
            &compliance_core::Scope::all(),
        )
        .into_iter()
        .filter(|e| e.status == Status::Fail)
        .map(|e| e.check_id)
        .collect();
        for rule in crate::rules() {
            let id = &rule.check().id;
            let patched = plan_patch(&workload, id, &FixDefaults::default(), "PATCH").is_some();
            if rule.check().remediable {
                assert!(failing.contains(id), "{id} should fail on the sample");
                assert!(patched, "{id} is remediable but has no patch");
            } else {
                assert!(!patched, "{id} has a patch but the catalogue says it is not remediable");
            }
        }
        Ok(())
    }
}
