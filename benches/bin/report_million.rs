//! The report, its scores and every output for 1,000,000 evidence records
//! (`Report::from_owned_run` and `Report::write_all`, as `compliance scan`
//! does): time and peak memory.
//!
//! ```text
//! cargo run --release -p compliance-benches --bin report_million -- 1000000
//! ```

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::sync::Arc;
use std::time::Instant;

use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Engine, Scope};
use compliance_report::{Format, Report};

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let checks_count = 100;
    let resources = n / checks_count;
    let mut engine = Engine::new();
    for c in 0..checks_count {
        let id = format!("bench.area{}.check{c}", c % 10);
        let world = World::default();
        for r in 0..resources {
            match r % 10 {
                0 => world.set_unreadable(&format!("res-{r}"), &id),
                1..=3 => world.set(&format!("res-{r}"), &id, false),
                _ => world.set(&format!("res-{r}"), &id, true),
            }
        }
        engine = engine.with_collector(Arc::new(InMemoryCollector::new(
            format!("c{c}"),
            vec![sample_check(&id).expect("id")],
            world,
        )));
    }
    for f in compliance_report::builtin_frameworks() {
        engine = engine.with_framework(f);
    }
    let t = Instant::now();
    let run = engine.run(&Scope::all()).await;
    println!("collect {} evidence: {:.2} s (not part of the target)", run.evidence.len(), t.elapsed().as_secs_f64());
    let dir = tempfile::tempdir().expect("temp dir");

    let start = Instant::now();
    let report = Report::from_owned_run(run, engine.frameworks());
    println!("report and scores: {:.3} s", start.elapsed().as_secs_f64());
    let paths = report.write_all(&Format::ALL, dir.path()).expect("write all");
    let total_bytes: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    println!(
        "report, scores and all {} outputs for {n} evidence: {:.2} s, {} MiB written, peak RSS {} MiB",
        Format::ALL.len(),
        start.elapsed().as_secs_f64(),
        total_bytes / (1 << 20),
        peak_rss_mib()
    );
}
