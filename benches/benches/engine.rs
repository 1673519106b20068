//! Engine overhead: many collectors, waivers applied, report built.
//!
//! `engine/collectors_alone_100x10k` calls the same 100 collectors of
//! 10,000 evidence each as the engine does (concurrently, results joined in
//! order), without the engine; `engine/run_100x10k` runs them through the
//! engine (slots, timeouts, collector names, waivers, the run's check list).
//! The difference is the engine's own cost; the line printed after the
//! benchmarks gives it as a share of the run.

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Check, Collection, Collector, Engine, Evidence, ResourceRef, Scope, Status, Waiver};
use compliance_report::Report;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A collector that judges `resources` resources on 10 checks, building its
/// evidence as a real one does (a resource shared by its evidence, details).
struct Generated {
    name: String,
    checks: Vec<Check>,
    resources: usize,
}

#[async_trait]
impl Collector for Generated {
    fn name(&self) -> &str {
        &self.name
    }

    fn checks(&self) -> Vec<Check> {
        self.checks.clone()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let mut evidence = Vec::with_capacity(self.resources * self.checks.len());
        for r in 0..self.resources {
            let id = format!("ns-{}/{}-r{r}", r % 10, self.name);
            let resource = Arc::new(ResourceRef::new("bench", "Thing", id.clone(), id));
            for (i, check) in self.checks.iter().enumerate().filter(|(_, c)| scope.wants(&c.id)) {
                let status = if (r + i).is_multiple_of(4) { Status::Fail } else { Status::Pass };
                evidence.push(
                    Evidence::new(check, Arc::clone(&resource), status, "observed")
                        .with_details(serde_json::json!({ "value": r * i })),
                );
            }
        }
        Ok(evidence.into())
    }
}

fn generated(collectors: usize, per_collector: usize) -> Vec<Arc<dyn Collector>> {
    (0..collectors)
        .map(|k| {
            let checks = (0..10).map(|i| sample_check(&format!("bench.c{k}.check{i}")).expect("check id")).collect();
            Arc::new(Generated { name: format!("gen-{k}"), checks, resources: per_collector / 10 })
                as Arc<dyn Collector>
        })
        .collect()
}

fn waivers() -> Vec<Waiver> {
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    (0..10).map(|i| Waiver::new(format!("W{i}"), format!("bench.c{i}.*"), "ns-1/*", "r", "o", expires)).collect()
}

/// What the engine does at the least: every collector, concurrently, joined in order.
async fn alone(collectors: &[Arc<dyn Collector>], scope: &Scope) -> usize {
    let runs = collectors.iter().map(|c| {
        let (c, scope) = (Arc::clone(c), scope.clone());
        tokio::spawn(async move { c.collect(&scope).await })
    });
    let mut evidence = Vec::new();
    for done in futures::future::join_all(runs).await {
        evidence.extend(done.expect("task").expect("collect").evidence);
    }
    evidence.len()
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let collectors = generated(100, 10_000);
    let mut engine = Engine::new().with_waivers(waivers());
    for collector in &collectors {
        engine = engine.with_collector(Arc::clone(collector));
    }
    let scope = Scope::all();
    let mut group = c.benchmark_group("engine");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(1_000_000));
    group.bench_function("collectors_alone_100x10k", |b| b.iter(|| runtime.block_on(alone(&collectors, &scope))));
    group.bench_function("run_100x10k", |b| b.iter(|| runtime.block_on(engine.run(&scope)).evidence.len()));
    group.finish();

    // The share, from medians of the same two measurements taken in turn.
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        runtime.block_on(alone(&collectors, &scope));
        without.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        drop(runtime.block_on(engine.run(&scope)));
        with.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (without, with) = (median(&mut without), median(&mut with));
    println!(
        "engine overhead, 100 collectors x 10,000 evidence: collectors alone {:.0} ms, through the engine {:.0} ms: {:.1}% of the run",
        without * 1e3,
        with * 1e3,
        (with - without) / with * 100.0
    );
}

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
    engine = engine.with_waivers(waivers());

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(20_000));
    group.bench_function("run_20_collectors_20k_evidence", |b| b.iter(|| runtime.block_on(engine.run(&Scope::all()))));
    let run = runtime.block_on(engine.run(&Scope::all()));
    group.bench_function("report_20k_evidence", |b| b.iter(|| Report::from_run(&run, engine.frameworks())));
    group.finish();
}

criterion_group!(benches, engine, overhead);
criterion_main!(benches);
