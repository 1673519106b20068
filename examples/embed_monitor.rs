//! A service that runs the compliance monitor inside itself: its own
//! collector and the manifest collector, scanned on an interval, every run
//! stored in a SQLite evidence store, `/metrics` merged into the service's
//! own router next to its own routes.
//!
//! ```text
//! cargo run -p compliance-examples --example embed_monitor
//! ```

use std::sync::Arc;
use std::time::Duration;

use compliance_rs::monitor::{Monitor, MonitorSettings};
use compliance_rs::sql::SqlStore;
use compliance_rs::testkit::{InMemoryCollector, World, sample_check};
use compliance_rs::{CancellationToken, EvidenceStore, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The service's own source of evidence, next to a provider's.
    let world = World::default();
    world.set("orders-db", "shop.db.backups", true);
    world.set("users-db", "shop.db.backups", false);
    let own = InMemoryCollector::new("shop", vec![sample_check("shop.db.backups")?], world);
    let mut sections = compliance_rs::provider::Sections::new();
    let manifests = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests");
    sections.insert("k8s".into(), serde_json::json!({ "manifests": [manifests] }));
    let wiring = compliance_rs::registry().build(&sections).await?;
    let mut engine = wiring.engine().with_collector(Arc::new(own));
    for framework in compliance_rs::report::builtin_frameworks() {
        engine = engine.with_framework(framework);
    }

    let dir = std::env::temp_dir().join(format!("embed-monitor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqlStore::open(&format!("sqlite://{}", dir.join("evidence.db").display())).await?);
    let monitor = Monitor::new(engine, store.clone(), MonitorSettings::default().with_interval(Duration::from_secs(1)))
        .with_scope(Scope::only(["shop.*", "k8s.pod.*"]))
        .on_run(|source, report| println!("[{source}] {}", report.summary_line()));

    // The service's router: its own routes, and the monitor's /metrics and /healthz.
    let app = axum::Router::new().route("/orders", axum::routing::get(|| async { "[]" })).merge(monitor.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let server =
        tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future());

    // Two scans a second apart, then stop, as a service would on SIGTERM.
    let cycles = monitor.run(stop.clone(), Some(2)).await;
    let metrics = http_get(addr, "/metrics").await?;
    assert!(metrics.contains("compliance_score_percentage"), "{metrics}");
    stop.cancel();
    server.await??;

    let runs = store.runs(None, None).await?;
    let chain = store.verify().await?;
    println!("{cycles} scans, {} runs stored, chain intact: {}", runs.len(), chain.is_intact());
    assert_eq!(runs.len(), 2);
    assert!(chain.is_intact());
    store.pool().close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A plain HTTP GET on loopback, enough for this example.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}
