//! Keep every run in an evidence store (SQLite here; PostgreSQL with a
//! `postgres://` URL), ask it what an auditor asks, and show that editing
//! the database behind its back is caught.
//!
//! ```text
//! cargo run -p compliance-examples --example evidence_history
//! ```

use std::sync::Arc;

use compliance_rs::k8s::ManifestCollector;
use compliance_rs::sql::SqlStore;
use compliance_rs::{Engine, EvidenceStore, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("compliance-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqlStore::open(&format!("sqlite://{}", dir.join("evidence.db").display())).await?;

    let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let engine = Engine::new().with_collector(Arc::new(ManifestCollector::new([manifests])));
    let frameworks = compliance_rs::report::builtin_frameworks();
    for _ in 0..3 {
        let run = engine.run(&Scope::all()).await;
        let stored = store.append_run(&run, &frameworks, &[], "example").await?;
        println!(
            "run {} stored at record {}: {} evidence, {} failures",
            stored.id, stored.seq, stored.evidence, stored.failures
        );
    }

    let latest = store.latest().await?;
    println!("latest status: {} check × resource pairs", latest.len());
    let now = chrono::Utc::now();
    let cc61 = store.control_evidence("soc2", "CC6.1", now - chrono::Duration::days(1), now).await?;
    println!("SOC 2 CC6.1, last 24 h: {} evidence", cc61.len());

    let report = store.verify().await?;
    println!("verify: intact = {}, {} records, head {}", report.is_intact(), report.records, report.head.hash);

    // Someone turns a failure into a pass, directly in the database.
    sqlx::query("UPDATE records SET body = REPLACE(body, '\"fail\"', '\"pass\"') WHERE seq = (SELECT MIN(seq) FROM records WHERE status = 'fail')")
        .execute(store.pool())
        .await?;
    let report = store.verify().await?;
    println!("after tampering: {}", report.problem.map_or_else(|| "not caught!".to_owned(), |p| p.to_string()));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
