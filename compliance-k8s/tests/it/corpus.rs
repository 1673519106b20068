//! The shared corpus of real third-party manifests (../shared/corpus/k8s,
//! outside this repository): ignored by plain `cargo test`, run by
//! `scripts/test` when it is there.

use std::path::PathBuf;

use compliance_core::{Scope, Status};
use compliance_k8s::{CheckConfig, WorkloadKind, scan_paths};
use serde_json::Value;

use crate::TestResult;

/// The corpus; its tests are ignored by plain `cargo test` and run by
/// `scripts/test` when the folder is there.
fn corpus() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/k8s");
    if dir.is_dir() { Ok(dir) } else { Err(format!("the shared corpus is not at {}", dir.display())) }
}

fn secret_values(dir: &PathBuf) -> Vec<String> {
    let mut values = Vec::new();
    for entry in walk(dir) {
        let Ok(text) = std::fs::read_to_string(&entry) else { continue };
        for doc in compliance_core::yaml::parse_documents(&text, "x").documents {
            if doc.value["kind"] == "Secret" {
                for field in ["data", "stringData"] {
                    if let Some(map) = doc.value[field].as_object() {
                        values
                            .extend(map.values().filter_map(Value::as_str).filter(|v| v.len() >= 6).map(str::to_owned));
                    }
                }
            }
        }
    }
    values
}

fn walk(dir: &PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
#[ignore = "needs the shared corpus of third-party manifests (../shared/corpus/k8s, outside this repository)"]
fn the_whole_shared_corpus_is_judged_invalid_files_are_gaps_and_secrets_never_leak() -> TestResult {
    let dir = corpus()?;
    let collection = scan_paths(std::slice::from_ref(&dir), &CheckConfig::default(), &Scope::all());

    // The five invalid templates are gaps naming file and line; the rest go on.
    let mut gap_files: Vec<String> = collection.gaps.iter().filter_map(|g| g.source.clone()).collect();
    gap_files.sort();
    assert_eq!(gap_files.len(), 5, "{gap_files:#?}");
    for g in &collection.gaps {
        let source = g.source.as_deref().unwrap_or_default();
        assert!(source.contains("-template.yaml:"), "{source}");
        let line = source.rsplit(':').next().and_then(|l| l.parse::<usize>().ok());
        assert!(line.is_some_and(|l| l > 0), "{source}");
        assert!(g.reason.contains("invalid YAML"), "{}", g.reason);
    }

    // Only workload kinds produce evidence.
    let workload_kinds: Vec<&str> = WorkloadKind::ALL.iter().map(|k| k.as_str()).collect();
    assert!(collection.evidence.iter().all(|e| workload_kinds.contains(&e.resource.kind.as_str())));
    let workloads: std::collections::HashSet<&str> =
        collection.evidence.iter().map(|e| e.resource.id.as_str()).collect();
    assert!(workloads.len() > 120, "{} workloads", workloads.len());
    assert!(collection.evidence.iter().all(|e| e.resource.file.is_some() && e.resource.line.is_some()));

    // No Secret value appears anywhere in what we produce.
    let secrets = secret_values(&dir);
    assert!(secrets.len() >= 10, "expected the corpus's secret values, found {}", secrets.len());
    let output = serde_json::to_string(&collection)?;
    for s in &secrets {
        assert!(!output.contains(s.as_str()), "a secret value leaked into the output");
    }
    Ok(())
}

#[test]
#[ignore = "needs the shared corpus of third-party manifests (../shared/corpus/k8s, outside this repository)"]
fn the_four_first_rules_on_known_shared_corpus_files() -> TestResult {
    let dir = corpus()?;
    let status = |file: &str, check: &str| -> Vec<(String, Status)> {
        let c = scan_paths(&[dir.join(file)], &CheckConfig::default(), &Scope::only([check]));
        c.evidence.iter().map(|e| (e.resource.name.clone(), e.status)).collect()
    };
    // Hardened: microservices-demo sets runAsNonRoot at pod level only, which
    // Kubernetes applies to every container (a rule demanding both levels would fail it).
    let ad = status("microservices-demo/kubernetes-manifests_adservice.yaml", "k8s.pod.run_as_non_root");
    assert_eq!(ad, [("adservice".to_owned(), Status::Pass)]);
    let ad_mem = status("microservices-demo/kubernetes-manifests_adservice.yaml", "k8s.container.memory_limit");
    assert_eq!(ad_mem, [("adservice".to_owned(), Status::Pass)]);
    // Unhardened examples fail both.
    let frontend = status("kubernetes-examples/_archived_cluster-dns_dns-frontend-pod.yaml", "k8s.pod.run_as_non_root");
    assert_eq!(frontend.len(), 1);
    assert_eq!(frontend[0].1, Status::Fail);
    Ok(())
}

#[test]
#[ignore = "needs the shared corpus of third-party manifests (../shared/corpus/k8s, outside this repository)"]
fn shared_corpus_totals_per_rule() -> TestResult {
    let dir = corpus()?;
    let collection = scan_paths(&[dir], &CheckConfig::default(), &Scope::all());
    for check in [
        "k8s.pod.run_as_non_root",
        "k8s.container.memory_limit",
        "k8s.volume.secret_default_mode",
        "k8s.workload.required_labels",
    ] {
        let count =
            |s: Status| collection.evidence.iter().filter(|e| e.check_id.as_str() == check && e.status == s).count();
        eprintln!(
            "{check}: pass {} fail {} n/a {} error {}",
            count(Status::Pass),
            count(Status::Fail),
            count(Status::NotApplicable),
            count(Status::Error)
        );
        // One corpus Pod has a placeholder (`lun: <ADD LUN ID Here>`) where
        // Kubernetes needs an integer: it cannot be judged, and says why.
        for e in collection.evidence.iter().filter(|e| e.check_id.as_str() == check && e.status == Status::Error) {
            assert!(e.resource.id.contains("_archived_volumes_fibre_channel_fc.yaml#0/Pod/"), "{}", e.resource.id);
            assert!(e.message.contains("spec.volumes[0].fc.lun: invalid type"), "{}", e.message);
            assert!(!e.message.contains("ADD LUN"), "values are redacted");
        }
        assert!(count(Status::Fail) > 0, "{check}: the unhardened examples fail it");
    }
    Ok(())
}

#[tokio::test]
async fn the_manifest_collector_passes_the_conformance_suite() -> TestResult {
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests");
    let collector = compliance_k8s::ManifestCollector::new([examples]);
    let collection = compliance_core::testkit::check_collector(&collector, &Scope::all()).await?;
    assert!(collection.evidence.len() > 50);
    let scoped = compliance_core::testkit::check_collector(&collector, &Scope::only(["k8s.volume.*"])).await?;
    assert!(scoped.evidence.iter().all(|e| e.check_id.as_str().starts_with("k8s.volume.")));
    Ok(())
}
