//! The full Kubernetes check set over generated manifests, parse included:
//! 1,000 and 10,000 workloads side by side, and the parse alone; and per
//! object, the built-in checks next to the example Rego policy (the same four ideas
//! as the blog post the project grew from).

use compliance_benches::generate_workloads;
use compliance_core::{ResourceRef, Scope};
use compliance_k8s::{CheckConfig, RegoConfig, RegoPolicy, Workload, admission_input, evaluate, scan_text};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn k8s_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("k8s_scan");
    group.sample_size(10);
    let config = CheckConfig::default();
    let scope = Scope::all();
    for n in [1_000, 10_000] {
        let text = generate_workloads(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("parse_and_all_checks", n), &text, |b, text| {
            b.iter(|| scan_text(text, "bench.yaml", &config, &scope))
        });
        group.bench_with_input(BenchmarkId::new("parse_only", n), &text, |b, text| {
            b.iter(|| compliance_core::yaml::parse_documents(text, "bench.yaml"))
        });
    }
    group.finish();
}

/// Per object, parse excluded: the built-in checks next to the
/// example Rego policy (compiled once, evaluated per object through
/// regorus), on the same 1,000 workloads.
fn native_vs_rego(c: &mut Criterion) {
    let n = 1_000;
    let text = generate_workloads(n);
    let objects: Vec<serde_json::Value> =
        compliance_core::yaml::parse_documents(&text, "bench.yaml").documents.into_iter().map(|d| d.value).collect();
    let policy_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/soc2-workloads.rego");
    let policy = std::fs::read_to_string(&policy_file)
        .ok()
        .and_then(|text| RegoPolicy::from_source(&text, "soc2-workloads.rego", &RegoConfig::default()).ok());
    let Some(policy) = policy else {
        eprintln!("cannot load {}", policy_file.display());
        return;
    };
    let resource = || ResourceRef::new("k8s", "Deployment", "bench", "bench");
    let config = CheckConfig::default();
    let four = Scope::only([
        "k8s.pod.run_as_non_root",
        "k8s.container.memory_limit",
        "k8s.volume.secret_default_mode",
        "k8s.workload.required_labels",
    ]);
    let mut group = c.benchmark_group("per_object");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n as u64));
    for (name, scope) in [("native_all_checks", Scope::all()), ("native_same_4_checks", four)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                objects
                    .iter()
                    .filter_map(|o| Workload::from_object(o.clone()).ok().flatten())
                    .map(|w| evaluate(&w, resource(), &config, &scope).len())
                    .sum::<usize>()
            })
        });
    }
    group.bench_function("rego_example_policy_compiled", |b| {
        b.iter(|| objects.iter().map(|o| policy.judge(&admission_input(o, None)).status as usize).sum::<usize>())
    });
    group.finish();
}

criterion_group!(benches, k8s_checks, native_vs_rego);
criterion_main!(benches);
