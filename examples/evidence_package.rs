//! Evidence an auditor can verify offline: sign the chain's head after each
//! run, export a signed package for SOC 2 CC6.1, verify it from the folder
//! alone, and watch a tampered copy fail.
//!
//! ```text
//! cargo run -p compliance-examples --example evidence_package
//! ```

use std::sync::Arc;

use compliance_rs::attest::checkpoint::{append_checkpoint, verify_checkpoints};
use compliance_rs::attest::package::{ExportRequest, export, verify_package};
use compliance_rs::attest::{Keyring, SigningKey};
use compliance_rs::k8s::ManifestCollector;
use compliance_rs::sql::SqlStore;
use compliance_rs::{Engine, EvidenceStore, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("compliance-package-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqlStore::open(&format!("sqlite://{}", dir.join("evidence.db").display())).await?;
    // In production the key lives in a file (`compliance keys generate`) or comes from a KMS export.
    let key = SigningKey::generate()?;
    let keyring = Keyring::single(key.public_key().clone());

    let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let engine = Engine::new().with_collector(Arc::new(ManifestCollector::new([manifests])));
    let frameworks = compliance_rs::report::builtin_frameworks();
    for _ in 0..2 {
        let run = engine.run(&Scope::all()).await;
        store.append_run(&run, &frameworks, &[], "example").await?;
        let checkpoint = append_checkpoint(&store, &key).await?;
        println!("run stored; checkpoint of record {} signed by {}", checkpoint.seq, &checkpoint.key[..16]);
    }
    let signed = verify_checkpoints(&store, &keyring, &[]).await?;
    println!("checkpoints: {} verified, problem: {:?}", signed.in_chain, signed.problem);

    let now = chrono::Utc::now();
    let request = ExportRequest::new(
        "soc2",
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(1),
        frameworks,
        compliance_rs::registry().checks(),
    )
    .with_controls(["CC6.1"]);
    let package = dir.join("package");
    let summary = export(&store, &request, &package, Some(&key)).await?;
    println!("package: {} runs, {} evidence, {} files signed", summary.runs, summary.evidence, summary.files);
    match verify_package(&package, &keyring)? {
        Ok(report) => println!(
            "verified offline: {} chain records, {} evidence found in the chain",
            report.chain_records, report.evidence
        ),
        Err(problem) => return Err(format!("a fresh package does not verify: {problem}").into()),
    }

    // Someone edits the control file before handing it over.
    let control = package.join("controls/soc2/CC6.1.json");
    let edited = std::fs::read_to_string(&control)?.replacen("\"fail\"", "\"pass\"", 1);
    std::fs::write(&control, edited)?;
    match verify_package(&package, &keyring)? {
        Ok(_) => return Err("a tampered package verified".into()),
        Err(problem) => println!("after tampering: {problem}"),
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
