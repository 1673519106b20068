//! The evidence store at history scale: stores N runs of M evidence each
//! (100 × 10,000 by default), then answers "latest status per check and
//! resource" and "verify the chain", on SQLite and on PostgreSQL.
//!
//! ```text
//! cargo run --release -p compliance-benches --bin store_history -- [RUNS] [EVIDENCE_PER_RUN] [POSTGRES_ADMIN_URL]
//! ```
//! PostgreSQL defaults to the server `.ci/run` starts
//! (`postgres://postgres@127.0.0.1:55432/postgres`); it is skipped, and
//! says so, when none answers.

use std::time::Instant;

use compliance_core::store::EvidenceStore;
use compliance_core::{Check, Evidence, ResourceRef, Run, Severity, Status};
use compliance_store::SqlStore;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn checks() -> Result<Vec<Check>> {
    (0..10)
        .map(|i| Ok(Check::new(&format!("bench.check.c{i}"), format!("check {i}"), Severity::Medium, "Thing")?))
        .collect()
}

/// One run: every check on `per_run / checks` resources; a few statuses change between runs.
fn run(checks: &[Check], per_run: usize, round: usize) -> Run {
    let resources = per_run / checks.len();
    let mut evidence = Vec::with_capacity(per_run);
    for r in 0..resources {
        let resource =
            std::sync::Arc::new(ResourceRef::new("bench", "Thing", format!("bench/thing-{r}"), format!("thing-{r}")));
        for (i, check) in checks.iter().enumerate() {
            let status = if (r + i + round).is_multiple_of(7) { Status::Fail } else { Status::Pass };
            let e = Evidence::new(check, resource.clone(), status, "observed")
                .with_details(serde_json::json!({ "round": round, "value": r * i }));
            evidence.push(e);
        }
    }
    Run::from_evidence(checks.to_vec(), evidence)
}

async fn measure(label: &str, store: &SqlStore, runs: usize, per_run: usize) -> Result<()> {
    let checks = checks()?;
    let started = Instant::now();
    let mut slowest = 0.0f64;
    for round in 0..runs {
        let one = Instant::now();
        store.append_run(&run(&checks, per_run, round), &[], &[], "bench").await?;
        slowest = slowest.max(one.elapsed().as_secs_f64());
    }
    let store_time = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let latest = store.latest().await?;
    let latest_time = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let again = store.latest().await?.len();
    let latest_again = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = store.verify().await?;
    let verify_time = started.elapsed().as_secs_f64();
    if !report.is_intact() {
        return Err(format!("{label}: the chain does not verify: {:?}", report.problem).into());
    }
    println!(
        "{label:<10} store {runs} runs × {per_run}: {store_time:7.2} s ({:.0} ms per run, slowest {:.0} ms) | latest: {} rows in {latest_time:.3} s (again: {again} in {latest_again:.3} s) | verify: {} records in {verify_time:.2} s",
        store_time * 1000.0 / runs as f64,
        slowest * 1000.0,
        latest.len(),
        report.records,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let per_run: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let admin = args.get(2).cloned().unwrap_or_else(|| "postgres://postgres@127.0.0.1:55432/postgres".to_owned());

    // The part every backend shares: canonical JSON and hashing of one run's records.
    let sample = run(&checks()?, per_run, 0);
    let started = Instant::now();
    let records = compliance_core::store::run_records(&sample, &[], &[], "bench");
    let sealed = compliance_core::store::seal_all(&Default::default(), records);
    println!(
        "{:<10} records of one run built and sealed: {} in {:.0} ms",
        "(shared)",
        sealed.0.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    let dir = tempfile::tempdir()?;
    let sqlite = SqlStore::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    measure("sqlite", &sqlite, runs, per_run).await?;
    let size = std::fs::metadata(dir.path().join("bench.db"))?.len();
    println!("{:<10} database file: {} MB", "sqlite", size / 1_000_000);

    sqlx::any::install_default_drivers();
    match sqlx::AnyPool::connect(&admin).await {
        Ok(pool) => {
            let name = format!("compliance_bench_{}", std::process::id());
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let store = SqlStore::open(&format!("{base}/{name}")).await?;
            measure("postgres", &store, runs, per_run).await?;
            // Right after a bulk load the planner has no statistics yet (autovacuum analyzes within a minute or so).
            sqlx::query("ANALYZE").execute(store.pool()).await?;
            let started = Instant::now();
            let n = store.latest().await?.len();
            println!("{:<10} latest after ANALYZE: {n} rows in {:.3} s", "postgres", started.elapsed().as_secs_f64());
            store.pool().close().await;
            sqlx::query(&format!("DROP DATABASE {name}")).execute(&pool).await?;
        }
        Err(e) => println!("postgres   SKIPPED: {admin}: {e}"),
    }
    Ok(())
}
