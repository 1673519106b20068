//! The four rules the project started from (ARCHITECTURE.md, "Where the
//! rules come from"), judged on effective values.

use compliance_core::Status;
use compliance_k8s::CheckConfig;
use proptest::prelude::*;

use crate::{TestResult, judge, judge_with, pod};

fn status(yaml: &str, check: &str) -> Status {
    let evidence = judge(yaml, check);
    assert_eq!(evidence.len(), 1, "one evidence per check per workload: {evidence:?}");
    evidence[0].status
}

const RUN_AS_NON_ROOT: &str = "k8s.pod.run_as_non_root";

#[test]
fn run_as_non_root_judges_the_effective_value() {
    let cases: &[(&str, &str, Status)] = &[
        (
            "pod true, containers unset",
            "  securityContext: {runAsNonRoot: true}\n  containers: [{name: a}, {name: b}]\n",
            Status::Pass,
        ),
        (
            "pod unset, every container true",
            "  containers:\n  - {name: a, securityContext: {runAsNonRoot: true}}\n  - {name: b, securityContext: {runAsNonRoot: true}}\n",
            Status::Pass,
        ),
        (
            "both levels true",
            "  securityContext: {runAsNonRoot: true}\n  containers: [{name: a, securityContext: {runAsNonRoot: true}}]\n",
            Status::Pass,
        ),
        (
            "container false overrides pod true",
            "  securityContext: {runAsNonRoot: true}\n  containers:\n  - {name: a}\n  - {name: b, securityContext: {runAsNonRoot: false}}\n",
            Status::Fail,
        ),
        (
            "container true overrides pod false",
            "  securityContext: {runAsNonRoot: false}\n  containers: [{name: a, securityContext: {runAsNonRoot: true}}]\n",
            Status::Pass,
        ),
        ("unset everywhere", "  containers: [{name: a}]\n", Status::Fail),
        (
            "one container unset, pod unset",
            "  containers:\n  - {name: a, securityContext: {runAsNonRoot: true}}\n  - {name: b}\n",
            Status::Fail,
        ),
        (
            "init container false",
            "  securityContext: {runAsNonRoot: true}\n  initContainers: [{name: init, securityContext: {runAsNonRoot: false}}]\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        (
            "init container unset, pod unset",
            "  initContainers: [{name: init}]\n  containers: [{name: a, securityContext: {runAsNonRoot: true}}]\n",
            Status::Fail,
        ),
        (
            "init container covered by pod",
            "  securityContext: {runAsNonRoot: true}\n  initContainers: [{name: init}]\n  containers: [{name: a}]\n",
            Status::Pass,
        ),
    ];
    for (name, spec, expected) in cases {
        assert_eq!(status(&pod(spec), RUN_AS_NON_ROOT), *expected, "{name}");
    }
}

#[test]
fn run_as_non_root_details_name_the_offending_container_and_field() -> TestResult {
    let e = &judge(
        &pod(
            "  securityContext: {runAsNonRoot: true}\n  containers:\n  - {name: a}\n  - {name: b, securityContext: {runAsNonRoot: false}}\n",
        ),
        RUN_AS_NON_ROOT,
    )[0];
    let v = &e.details["violations"];
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["container"], "b");
    assert_eq!(v[0]["field"], "spec.containers[1].securityContext.runAsNonRoot");
    assert_eq!(e.details["pod_run_as_non_root"], true);
    assert!(e.message.contains(": b"), "{}", e.message);
    assert!(e.remediation.is_some());
    Ok(())
}

proptest! {
    /// Container settings override pod settings, for every combination.
    #[test]
    fn run_as_non_root_matches_kubernetes_semantics(
        pod_value in proptest::option::of(any::<bool>()),
        containers in proptest::collection::vec(proptest::option::of(any::<bool>()), 1..5),
        inits in proptest::collection::vec(proptest::option::of(any::<bool>()), 0..3),
    ) {
        let sc = |v: &Option<bool>| v.map(|b| format!(", securityContext: {{runAsNonRoot: {b}}}")).unwrap_or_default();
        let mut spec = String::new();
        if let Some(p) = pod_value {
            spec.push_str(&format!("  securityContext: {{runAsNonRoot: {p}}}\n"));
        }
        if !inits.is_empty() {
            spec.push_str("  initContainers:\n");
            for (i, c) in inits.iter().enumerate() {
                spec.push_str(&format!("  - {{name: init{i}{}}}\n", sc(c)));
            }
        }
        spec.push_str("  containers:\n");
        for (i, c) in containers.iter().enumerate() {
            spec.push_str(&format!("  - {{name: c{i}{}}}\n", sc(c)));
        }
        let expected = containers.iter().chain(&inits).all(|c| c.or(pod_value) == Some(true));
        let got = status(&pod(&spec), RUN_AS_NON_ROOT);
        prop_assert_eq!(got == Status::Pass, expected, "{}", spec);
        prop_assert!(got == Status::Pass || got == Status::Fail);
    }
}

#[test]
fn memory_limit_on_every_container_and_init_container() {
    let check = "k8s.container.memory_limit";
    let limited = "resources: {limits: {memory: 128Mi}}";
    assert_eq!(status(&pod(&format!("  containers: [{{name: a, {limited}}}]\n")), check), Status::Pass);
    assert_eq!(
        status(&pod(&format!("  initContainers: [{{name: i}}]\n  containers: [{{name: a, {limited}}}]\n")), check),
        Status::Fail
    );
    assert_eq!(
        status(&pod("  containers: [{name: a, resources: {requests: {memory: 128Mi}}}]\n"), check),
        Status::Fail
    );
    assert_eq!(status(&pod("  containers: [{name: a, resources: {limits: {cpu: 100m}}}]\n"), check), Status::Fail);
    assert_eq!(
        status(
            &pod(&format!("  initContainers: [{{name: i, {limited}}}]\n  containers: [{{name: a, {limited}}}]\n")),
            check
        ),
        Status::Pass
    );
}

const SECRET_MODE: &str = "k8s.volume.secret_default_mode";

fn secret_pod(volume: &str) -> String {
    pod(&format!(
        "  containers: [{{name: a}}]\n  volumes:\n  - name: creds\n    secret:\n      secretName: creds\n{volume}"
    ))
}

#[test]
fn secret_mode_reads_yaml_octal_as_kubernetes_does() {
    let cases: &[(&str, &str, Status)] = &[
        ("defaultMode unset: Kubernetes uses 0644", "", Status::Fail),
        ("0400 is octal: owner read", "      defaultMode: 0400\n", Status::Pass),
        ("0440: owner and group read", "      defaultMode: 0440\n", Status::Pass),
        ("0640: group read", "      defaultMode: 0640\n", Status::Pass),
        ("0644: others read", "      defaultMode: 0644\n", Status::Fail),
        ("0660: group write", "      defaultMode: 0660\n", Status::Fail),
        ("0600", "      defaultMode: 0600\n", Status::Pass),
        ("256 decimal is 0400", "      defaultMode: 256\n", Status::Pass),
        ("400 decimal is 0620: group write", "      defaultMode: 400\n", Status::Fail),
        ("0o400, YAML 1.2 octal", "      defaultMode: 0o400\n", Status::Pass),
        (
            "items mode 0644 widens a good default",
            "      defaultMode: 0400\n      items: [{key: k, path: p, mode: 0644}]\n",
            Status::Fail,
        ),
        (
            "items mode 0400 under a good default",
            "      defaultMode: 0400\n      items: [{key: k, path: p, mode: 0400}]\n",
            Status::Pass,
        ),
    ];
    for (name, volume, expected) in cases {
        assert_eq!(status(&secret_pod(volume), SECRET_MODE), *expected, "{name}");
    }
}

#[test]
fn secret_mode_details_show_octal_and_not_applicable_without_secret_volumes() {
    let e = &judge(&secret_pod("      defaultMode: 0644\n"), SECRET_MODE)[0];
    assert_eq!(e.details["violations"][0]["value"], "0644");
    assert_eq!(e.details["violations"][0]["field"], "spec.volumes[0].secret.defaultMode");
    let none = pod("  containers: [{name: a}]\n  volumes: [{name: cfg, configMap: {name: cfg}}]\n");
    assert_eq!(status(&none, SECRET_MODE), Status::NotApplicable);
    assert_eq!(status(&pod("  containers: [{name: a}]\n"), SECRET_MODE), Status::NotApplicable);
}

#[test]
fn secret_mode_in_json_and_quoted_mode_is_an_error() {
    let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}],"volumes":[{"name":"s","secret":{"secretName":"s","defaultMode":256}}]}}"#;
    let c = compliance_k8s::scan_text(
        json,
        "pod.json",
        &CheckConfig::default(),
        &compliance_core::Scope::only([SECRET_MODE]),
    );
    assert_eq!(c.evidence[0].status, Status::Pass);
    // A quoted mode is a string, which Kubernetes rejects: not judged, and said so.
    let e = &judge(&secret_pod("      defaultMode: '0400'\n"), SECRET_MODE)[0];
    assert_eq!(e.status, Status::Error);
    assert!(e.message.contains("spec.volumes[0].secret.defaultMode"), "{}", e.message);
    assert!(e.message.contains("test.yaml:1"), "{}", e.message);
}

const LABELS: &str = "k8s.workload.required_labels";

fn workload(kind: &str, api: &str, labels: &str) -> String {
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: w\n  labels: {{{labels}}}\nspec:\n  template:\n    spec:\n      containers: [{{name: a}}]\n"
    )
}

#[test]
fn required_labels_on_deployments_statefulsets_daemonsets_only() {
    let all = "data-classification: internal, data-retention: 90d, compliance-scope: soc2";
    for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
        assert_eq!(status(&workload(kind, "apps/v1", all), LABELS), Status::Pass, "{kind}");
        let e = &judge(&workload(kind, "apps/v1", "data-classification: internal"), LABELS)[0];
        assert_eq!(e.status, Status::Fail);
        assert_eq!(e.details["missing"], serde_json::json!(["data-retention", "compliance-scope"]));
    }
    assert!(judge(&workload("ReplicaSet", "apps/v1", ""), LABELS).is_empty());
    assert!(judge(&workload("Job", "batch/v1", ""), LABELS).is_empty());
    assert!(judge(&pod("  containers: [{name: a}]\n"), LABELS).is_empty());
}

#[test]
fn required_labels_are_configurable() {
    let config = CheckConfig::default().with_required_labels(["owner"]);
    let e = judge_with(&workload("Deployment", "apps/v1", "owner: team-a"), LABELS, &config);
    assert_eq!(e[0].status, Status::Pass);
    let e = judge_with(&workload("Deployment", "apps/v1", "team: a"), LABELS, &config);
    assert_eq!(e[0].status, Status::Fail);
}

#[test]
fn every_workload_kind_is_read() {
    let kinds = [
        ("v1", "ReplicationController"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
    ];
    for (api, kind) in kinds {
        let e = judge(&workload(kind, api, ""), "k8s.container.memory_limit");
        assert_eq!(e.len(), 1, "{kind}");
        assert_eq!(e[0].resource.kind, kind);
    }
    let cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: a, resources: {limits: {memory: 1Gi}}}]\n";
    assert_eq!(status(cron, "k8s.container.memory_limit"), Status::Pass);
    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: a}]}}\n- {apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: 80}]}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: b}]}}\n";
    let e = judge(list, "k8s.container.memory_limit");
    let ids: Vec<&str> = e.iter().map(|e| e.resource.id.as_str()).collect();
    assert_eq!(ids, ["test.yaml#0/items[0]/Pod/a", "test.yaml#0/items[2]/Pod/b"]);
}

#[test]
fn one_file_is_judged_up_to_its_object_limit_and_the_rest_is_a_gap_that_counts_them() {
    // The audit's 200 MB file of 1.9 million Pods aborted the process at 8 GB:
    // evidence is held in memory, so one file is bounded (100,000 objects by
    // default; 10 here).
    let pods: String = (0..25)
        .map(|i| format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers: [{{name: c, image: nginx:1.27}}]\n"))
        .collect();
    let config = compliance_k8s::CheckConfig::default().with_max_objects_per_file(10);
    let c = compliance_k8s::scan_text(
        &pods,
        "many.yaml",
        &config,
        &compliance_core::Scope::only(["k8s.container.memory_limit"]),
    );
    assert_eq!(c.evidence.len(), 10, "the first ten objects are judged");
    assert_eq!(c.gaps.len(), 1);
    assert!(c.gaps[0].reason.contains("15 more left out"), "{}", c.gaps[0].reason);
    assert_eq!(c.gaps[0].source.as_deref(), Some("many.yaml"));
}
