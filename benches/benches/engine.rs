//! Engine overhead: many in-memory collectors, waivers applied, report built.

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::sync::Arc;

use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Engine, Scope, Waiver};
use compliance_report::Report;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut engine = Engine::new();
    for k in 0..20 {
        let world = World::default();
        let check_id = format!("bench.c{k}.flag");
        for r in 0..1_000 {
            world.set(&format!("ns-{}/r{r}", r % 10), &check_id, r % 4 != 0);
        }
        let check = sample_check(&check_id).expect("check id");
        engine = engine.with_collector(Arc::new(InMemoryCollector::new(format!("mem-{k}"), vec![check], world)));
    }
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    engine = engine.with_waivers(
        (0..10).map(|i| Waiver::new(format!("W{i}"), format!("bench.c{i}.*"), "ns-1/*", "r", "o", expires)),
    );

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(20_000));
    group.bench_function("run_20_collectors_20k_evidence", |b| b.iter(|| runtime.block_on(engine.run(&Scope::all()))));
    let run = runtime.block_on(engine.run(&Scope::all()));
    group.bench_function("report_20k_evidence", |b| b.iter(|| Report::from_run(&run, engine.frameworks())));
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
