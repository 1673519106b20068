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
}
