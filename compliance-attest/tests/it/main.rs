//! compliance-attest against a real chain: packages exported from a store
//! and verified from the folder alone, every tampering case named; signed
//! checkpoints against a rewritten chain; signed reports; and our envelopes
//! verified by an implementation that is not ours (securesystemslib).

mod checkpoints;
mod forgery;
mod independent;
mod openssl;
mod package;
mod signed_reports;

use std::sync::Arc;

use chrono::{Duration, Utc};
use compliance_attest::package::{ExportRequest, ExportSummary, export};
use compliance_attest::{SigningKey, Statement};
use compliance_core::framework::{Control, FrameworkDef};
use compliance_core::store::EvidenceStoreExt;
use compliance_core::testkit::InMemoryStore;
use compliance_core::testkit::sample_check;
use compliance_core::{
    Check, Evidence, EvidenceStore, Framework, Mode, RemediationOutcome, RemediationPlan, ResourceRef, Risk, Run,
    Status, Waiver,
};

/// What every test returns.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A framework and the checks it maps.
pub type Mapped = (Arc<dyn Framework>, Vec<Check>);

/// A framework of two controls over two sample checks.
pub fn framework() -> Result<Mapped, Box<dyn std::error::Error>> {
    let backups = sample_check("demo.db.backups")?;
    let encrypted = sample_check("demo.db.encrypted")?;
    let framework: Arc<dyn Framework> = Arc::new(FrameworkDef::new(
        "demo-fw",
        "Demo framework",
        "1",
        vec![
            Control::new("D-1", "Backups are taken", vec![backups.id.clone()]),
            Control::new("D/2", "Data is encrypted", vec![encrypted.id.clone()]),
        ],
    ));
    Ok((framework, vec![backups, encrypted]))
}

/// Three runs (two databases, one failing check waived), a plan with its
/// approval and outcome: the store an export reads.
pub async fn store_with_history() -> Result<(InMemoryStore, Arc<dyn Framework>, Vec<Check>), Box<dyn std::error::Error>>
{
    let store = InMemoryStore::default();
    let (framework, checks) = framework()?;
    let waiver = Waiver::new(
        "W-1",
        "demo.db.encrypted",
        "db-2",
        "legacy, until migrated",
        "ciso@example.com",
        Utc::now() + Duration::days(30),
    );
    for i in 0..3 {
        let mut evidence = Vec::new();
        for db in ["db-1", "db-2"] {
            let resource = Arc::new(
                ResourceRef::new("demo", "DB", db, db)
                    .with_account_region(Some("123456789012".into()), Some("eu-west-1".into())),
            );
            evidence.push(Evidence::new(&checks[0], resource.clone(), Status::Pass, format!("run {i}: backups on")));
            let encrypted = if db == "db-2" { Status::Fail } else { Status::Pass };
            evidence.push(
                Evidence::new(&checks[1], resource, encrypted, format!("run {i}: encryption"))
                    .with_details(serde_json::json!({ "algorithm": if encrypted == Status::Pass { "AES256" } else { "none" }, "ratio": 0.5 })),
            );
        }
        let run = Run::from_evidence(checks.clone(), evidence);
        store.append_run(&run, std::slice::from_ref(&framework), std::slice::from_ref(&waiver), "monitor").await?;
        if i == 1 {
            let failing = run.evidence.iter().find(|e| e.status == Status::Fail).ok_or("no failure")?;
            let plan = RemediationPlan::new(
                "demo",
                failing,
                "turn encryption on",
                Vec::new(),
                Risk::High,
                serde_json::Value::Null,
            );
            store.save_plan(&plan, Some(&run.id.to_string())).await?;
            store.decide(&plan.id, true, "alice@example.com", "change 42").await?;
            store.record_outcome(&RemediationOutcome::new(&plan, Mode::Apply, true, "done")).await?;
        }
    }
    Ok((store, framework, checks))
}

/// Exports the whole history into `dir`, signed by `key`.
pub async fn export_all(
    store: &dyn EvidenceStore,
    framework: &Arc<dyn Framework>,
    checks: &[Check],
    dir: &std::path::Path,
    key: Option<&SigningKey>,
) -> Result<ExportSummary, compliance_attest::AttestError> {
    let request = ExportRequest::new(
        "demo-fw",
        Utc::now() - Duration::days(1),
        Utc::now() + Duration::days(1),
        vec![framework.clone()],
        checks.to_vec(),
    );
    export(store, &request, dir, key).await
}

/// Signs the folder again as it is now, with the predicate it had: what a
/// signer whose tool went wrong (or who lies) would hand over. The checks
/// beyond the digests must then catch it.
pub fn resign(dir: &std::path::Path, key: &SigningKey) -> TestResult {
    resign_with(dir, key, |_| {})
}

/// Like [`resign`], after `edit` changed the statement.
pub fn resign_with(dir: &std::path::Path, key: &SigningKey, edit: impl FnOnce(&mut Statement)) -> TestResult {
    use base64::Engine;
    let envelope_path = dir.join("package.dsse.json");
    let envelope: compliance_attest::Envelope = serde_json::from_slice(&std::fs::read(&envelope_path)?)?;
    let payload = base64::engine::general_purpose::STANDARD.decode(&envelope.payload)?;
    let mut statement: Statement = serde_json::from_slice(&payload)?;
    // The manifest first (its sizes are checked), then every subject.
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
    for file in manifest["files"].as_array_mut().into_iter().flatten() {
        let path = dir.join(file["path"].as_str().unwrap_or_default());
        file["bytes"] = std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default().into();
        file["sha256"] = compliance_attest::sha256_hex(&std::fs::read(&path).unwrap_or_default()).into();
    }
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    for subject in &mut statement.subject {
        if let Ok(bytes) = std::fs::read(dir.join(&subject.name)) {
            *subject = compliance_attest::Subject::sha256(subject.name.clone(), compliance_attest::sha256_hex(&bytes));
        }
    }
    edit(&mut statement);
    let signed = compliance_attest::Envelope::sign(&envelope.payload_type, &serde_json::to_vec(&statement)?, key);
    std::fs::write(envelope_path, serde_json::to_vec_pretty(&signed)?)?;
    Ok(())
}

/// The first JSON report of a package (not its OSCAL twin).
pub fn first_report(dir: &std::path::Path) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let mut reports: Vec<_> = std::fs::read_dir(dir.join("reports"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".json") && !p.to_string_lossy().ends_with(".oscal.json"))
        .collect();
    reports.sort();
    reports.into_iter().next().ok_or_else(|| "no report".into())
}

/// Recomputes every record's position, link and hash from the first: what
/// someone who can write the database but holds no key does after editing.
pub fn rehash(records: &mut [compliance_core::store::Record]) {
    let mut prev = compliance_core::store::GENESIS.to_owned();
    for (i, record) in records.iter_mut().enumerate() {
        record.seq = i as i64 + 1;
        record.prev_hash = prev.clone();
        record.hash = compliance_core::store::seal(&prev, record.seq, record.kind, &record.body);
        prev = record.hash.clone();
    }
}
