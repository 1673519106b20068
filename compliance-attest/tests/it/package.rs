//! Evidence packages: exported, verified offline, and every tampering case
//! caught and named.

use std::path::Path;

use chrono::{Duration, Utc};
use compliance_attest::package::verify_package;
use compliance_attest::{Keyring, KeyringEntry, Problem, SigningKey};
use serde_json::Value;

use crate::{TestResult, export_all, first_report, resign, store_with_history};

async fn signed_package(dir: &Path) -> Result<SigningKey, Box<dyn std::error::Error>> {
    let (store, framework, checks) = store_with_history().await?;
    let key = SigningKey::generate()?;
    export_all(&store, &framework, &checks, dir, Some(&key)).await?;
    Ok(key)
}

fn verdict(
    dir: &Path,
    key: &SigningKey,
) -> Result<Result<compliance_attest::package::PackageReport, Problem>, Box<dyn std::error::Error>> {
    Ok(verify_package(dir, &Keyring::single(key.public_key().clone()))?)
}

fn problem(dir: &Path, key: &SigningKey) -> Result<Problem, Box<dyn std::error::Error>> {
    verdict(dir, key)?.err().ok_or_else(|| "the package still verifies".into())
}

#[tokio::test]
async fn an_exported_package_verifies_offline_and_holds_what_an_auditor_asks_for() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, framework, checks) = store_with_history().await?;
    let key = SigningKey::generate()?;
    let summary = export_all(&store, &framework, &checks, dir.path(), Some(&key)).await?;
    assert_eq!((summary.runs, summary.evidence, summary.controls), (3, 12, 2));
    // Three reports in three formats, two controls (one id with a slash), the chain, waivers, remediation, manifest.
    assert_eq!(summary.files, 9 + 2 + 4);
    assert!(dir.path().join("controls/demo-fw/D_2.json").is_file());
    let report = verdict(dir.path(), &key)?.map_err(|p| p.to_string())?;
    assert_eq!((report.runs, report.files, report.evidence), (3, 15, 12 + 6 + 6));
    assert_eq!(report.signed_by, key.fingerprint());
    let head = compliance_core::EvidenceStore::head(&store).await?;
    assert_eq!((report.head_seq, report.head_hash.as_str()), (head.seq, head.hash.as_str()));

    // What an auditor reads: the control's evidence, the waiver, the plan with its approval and outcome.
    let control: Value = serde_json::from_slice(&std::fs::read(dir.path().join("controls/demo-fw/D_2.json"))?)?;
    assert_eq!(control["checks"], serde_json::json!(["demo.db.encrypted"]));
    assert_eq!(control["evidence"].as_array().map(Vec::len), Some(6));
    let waivers: Value = serde_json::from_slice(&std::fs::read(dir.path().join("waivers.json"))?)?;
    assert_eq!(waivers.as_array().map(Vec::len), Some(3), "the waiver in force in each run");
    let remediation: Value = serde_json::from_slice(&std::fs::read(dir.path().join("remediation.json"))?)?;
    let kinds: Vec<&str> = remediation.as_array().into_iter().flatten().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["plan", "decision", "outcome"]);
    let chain = std::fs::read_to_string(dir.path().join("chain.jsonl"))?;
    assert_eq!(chain.lines().count() as i64, head.seq, "the chain from the first run's header to the head");
    Ok(())
}

#[tokio::test]
async fn a_changed_a_removed_and_an_added_file_are_each_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = signed_package(dir.path()).await?;
    let report = first_report(dir.path())?;
    let html = report.with_extension("html");
    let name = |p: &Path| p.strip_prefix(dir.path()).map(|p| p.to_string_lossy().into_owned());

    let original = std::fs::read(&html)?;
    std::fs::write(&html, [original.as_slice(), b"<!-- edited -->"].concat())?;
    assert!(matches!(problem(dir.path(), &key)?, Problem::FileChanged { path, .. } if path == name(&html)?));
    std::fs::write(&html, &original)?;

    std::fs::remove_file(dir.path().join("waivers.json"))?;
    assert_eq!(problem(dir.path(), &key)?, Problem::FileRemoved { path: "waivers.json".into() });
    std::fs::write(dir.path().join("waivers.json"), b"[]")?;
    assert!(matches!(problem(dir.path(), &key)?, Problem::FileChanged { path, .. } if path == "waivers.json"));
    Ok(())
}

#[tokio::test]
async fn an_added_file_is_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = signed_package(dir.path()).await?;
    std::fs::write(dir.path().join("reports/extra-screenshot.png"), b"not signed")?;
    assert_eq!(problem(dir.path(), &key)?, Problem::FileAdded { path: "reports/extra-screenshot.png".into() });
    Ok(())
}

#[tokio::test]
async fn evidence_added_to_a_report_but_not_in_the_chain_is_named_even_when_signed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = signed_package(dir.path()).await?;
    let path = first_report(dir.path())?;
    let mut report: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let mut invented = report["evidence"][0].clone();
    invented["resource"]["id"] = "db-invented".into();
    invented["status"] = "pass".into();
    report["evidence"].as_array_mut().ok_or("no evidence")?.push(invented);
    std::fs::write(&path, serde_json::to_vec(&report)?)?;
    // Without a new signature the digest catches it; signed anew, the chain does.
    assert!(matches!(problem(dir.path(), &key)?, Problem::FileChanged { .. }));
    resign(dir.path(), &key)?;
    let found = problem(dir.path(), &key)?;
    assert!(matches!(&found, Problem::EvidenceNotInChain { resource, .. } if resource == "db-invented"), "{found}");
    assert!(found.to_string().ends_with("evidence demo.db.backups on db-invented is not in the chain"), "{found}");
    Ok(())
}

#[tokio::test]
async fn an_edited_or_reordered_chain_record_is_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = signed_package(dir.path()).await?;
    let chain = dir.path().join("chain.jsonl");
    let original = std::fs::read_to_string(&chain)?;
    let lines: Vec<&str> = original.lines().collect();

    // An evidence record's status changed from fail to pass.
    let edited: Vec<String> = lines
        .iter()
        .map(|l| {
            if l.contains("\\\"status\\\":\\\"fail\\\"") {
                l.replacen("\\\"status\\\":\\\"fail\\\"", "\\\"status\\\":\\\"pass\\\"", 1)
            } else {
                (*l).to_owned()
            }
        })
        .collect();
    let changed_seq =
        lines.iter().position(|l| l.contains("\\\"status\\\":\\\"fail\\\"")).ok_or("no failing evidence")? as i64 + 1;
    std::fs::write(&chain, edited.join("\n") + "\n")?;
    resign(dir.path(), &key)?;
    let found = problem(dir.path(), &key)?;
    assert_eq!(found, Problem::ChainChanged { seq: changed_seq, detail: "its content does not match its hash".into() });

    // Two records swapped.
    let mut swapped: Vec<&str> = lines.clone();
    swapped.swap(3, 4);
    std::fs::write(&chain, swapped.join("\n") + "\n")?;
    resign(dir.path(), &key)?;
    let found = problem(dir.path(), &key)?;
    assert!(matches!(found, Problem::ChainChanged { seq: 5, .. }), "{found}");

    // The last record dropped: the segment no longer ends at the signed head.
    std::fs::write(&chain, lines[..lines.len() - 1].join("\n") + "\n")?;
    resign(dir.path(), &key)?;
    let found = problem(dir.path(), &key)?;
    assert!(found.to_string().contains("the statement signs"), "{found}");
    Ok(())
}

#[tokio::test]
async fn the_wrong_key_and_a_key_outside_its_period_are_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = signed_package(dir.path()).await?;
    let stranger = SigningKey::generate()?;
    let found = problem(dir.path(), &stranger)?;
    assert!(matches!(&found, Problem::BadSignature { keys, .. } if keys == key.fingerprint()), "{found}");

    let expired = Keyring::new(vec![KeyringEntry {
        key: key.public_key().clone(),
        not_before: Some(Utc::now() - Duration::days(400)),
        not_after: Some(Utc::now() - Duration::days(35)),
    }]);
    let found = verify_package(dir.path(), &expired)?.err().ok_or("verified with an expired key")?;
    assert!(matches!(&found, Problem::KeyNotValid { key: k, .. } if k == key.fingerprint()), "{found}");

    // A keyring file rotating from an old key to this one accepts it.
    let keys = tempfile::tempdir()?;
    std::fs::write(keys.path().join("old.pub"), stranger.public_key().to_pem())?;
    std::fs::write(keys.path().join("new.pub"), key.public_key().to_pem())?;
    let until = (Utc::now() - Duration::hours(1)).to_rfc3339();
    std::fs::write(
        keys.path().join("keyring.yaml"),
        format!(
            "keys:\n  - public_key: old.pub\n    not_after: {until}\n  - public_key: new.pub\n    not_before: {until}\n"
        ),
    )?;
    let keyring = Keyring::read(keys.path().join("keyring.yaml"))?;
    assert!(verify_package(dir.path(), &keyring)?.is_ok());
    Ok(())
}

#[tokio::test]
async fn an_unsigned_package_does_not_verify_and_says_why() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, framework, checks) = store_with_history().await?;
    export_all(&store, &framework, &checks, dir.path(), None).await?;
    assert!(dir.path().join("statement.json").is_file());
    let found = problem(dir.path(), &SigningKey::generate()?)?;
    assert!(found.to_string().contains("the package is not signed (it was exported without --sign-key)"), "{found}");
    Ok(())
}

#[tokio::test]
async fn export_refuses_an_empty_period_an_unknown_control_and_a_folder_in_use() -> TestResult {
    let (store, framework, checks) = store_with_history().await?;
    let dir = tempfile::tempdir()?;
    let later = compliance_attest::package::ExportRequest::new(
        "demo-fw",
        Utc::now() + Duration::days(1),
        Utc::now() + Duration::days(2),
        vec![framework.clone()],
        checks.clone(),
    );
    let error =
        compliance_attest::package::export(&store, &later, dir.path(), None).await.err().ok_or("exported nothing")?;
    assert!(error.to_string().starts_with("no run started between"), "{error}");
    let unknown = later.clone().with_controls(["D-9"]);
    let error =
        compliance_attest::package::export(&store, &unknown, dir.path(), None).await.err().ok_or("unknown control")?;
    assert_eq!(error.to_string(), "demo-fw has no control \"D-9\"");
    std::fs::write(dir.path().join("notes.txt"), b"mine")?;
    let error =
        export_all(&store, &framework, &checks, dir.path(), None).await.err().ok_or("wrote into a used folder")?;
    assert!(error.to_string().ends_with("not empty; a package is written into a new folder"), "{error}");
    Ok(())
}
