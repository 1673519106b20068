//! The full Kubernetes check set over generated manifests, parse included:
//! 1,000 and 10,000 workloads side by side, and the parse alone.

use compliance_benches::generate_workloads;
use compliance_core::Scope;
use compliance_k8s::{CheckConfig, scan_text};
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

criterion_group!(benches, k8s_checks);
criterion_main!(benches);
