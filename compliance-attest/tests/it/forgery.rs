//! What a hostile reviewer tried against packages (and the verifier now
//! refuses): a database rewritten with every hash recomputed and exported
//! anew, links and special files in the package, reports and control files
//! that say more than the chain, a signing time in the future.

use std::path::Path;

use chrono::{Duration, Utc};
use compliance_attest::checkpoint::append_checkpoint;
use compliance_attest::package::{VerifyOptions, verify_package, verify_package_with};
use compliance_attest::{Keyring, Problem, SigningKey};
use compliance_core::store::{Record, RecordKind, index_of};
use serde_json::Value;

use crate::{TestResult, export_all, first_report, rehash, resign, resign_with, store_with_history};

fn turn_failures_into_passes(records: &mut [Record]) {
    for r in records.iter_mut().filter(|r| r.kind == RecordKind::Evidence) {
        r.body = r.body.replace("\"status\":\"fail\"", "\"status\":\"pass\"");
        // The indexed columns too, as a careful forger would.
        r.index = index_of(r.kind, &serde_json::from_str(&r.body).unwrap_or_default());
    }
    rehash(records);
}

#[tokio::test]
async fn a_database_rewritten_without_the_monitors_key_does_not_make_a_valid_package() -> TestResult {
    let (store, framework, checks) = store_with_history().await?;
    let monitor = SigningKey::generate()?;
    let exporter = SigningKey::generate()?;
    // The copy kept outside signs the last record of the last run.
    let copies = vec![("copy".to_owned(), append_checkpoint(&store, &monitor).await?)];
    append_checkpoint(&store, &monitor).await?;
    let keyring = Keyring::new(
        [&monitor, &exporter]
            .iter()
            .map(|k| compliance_attest::KeyringEntry { key: k.public_key().clone(), not_before: None, not_after: None })
            .collect(),
    );
    // Every failure turned into a pass, every hash recomputed, the head moved: the chain verifies on its own.
    store.rewrite(|records| turn_failures_into_passes(records));
    assert!(compliance_core::EvidenceStore::verify(&store).await?.is_intact());
    let dir = tempfile::tempdir()?;
    export_all(&store, &framework, &checks, dir.path(), Some(&exporter)).await?;
    let found = verify_package(dir.path(), &keyring)?.err().ok_or("a forged history verified")?;
    assert!(
        matches!(&found, Problem::CheckpointMismatch { source_of, .. } if source_of.starts_with("chain.jsonl record")),
        "{found}"
    );

    // The checkpoints stripped too: caught by the copies, or by requiring checkpoints.
    store.rewrite(|records| {
        records.retain(|r| r.kind != RecordKind::Checkpoint);
        rehash(records);
    });
    let dir = tempfile::tempdir()?;
    export_all(&store, &framework, &checks, dir.path(), Some(&exporter)).await?;
    assert!(
        verify_package(dir.path(), &keyring)?.is_ok(),
        "without a requirement, an unattested package is only reported"
    );
    let required = VerifyOptions::default().requiring_checkpoints();
    let found = verify_package_with(dir.path(), &keyring, &required)?.err().ok_or("unattested runs accepted")?;
    assert!(matches!(found, Problem::NotAttested { attested_through: 0, .. }), "{found}");
    let with_copies = VerifyOptions::default().with_checkpoints(copies);
    let found = verify_package_with(dir.path(), &keyring, &with_copies)?.err().ok_or("copies ignored")?;
    assert!(matches!(&found, Problem::CheckpointMismatch { source_of, .. } if source_of == "copy"), "{found}");
    Ok(())
}

#[tokio::test]
async fn a_chain_that_does_not_verify_is_never_exported() -> TestResult {
    let (store, framework, checks) = store_with_history().await?;
    store.tamper(|records| records[3].body = records[3].body.replace("backups on", "backups off"));
    let dir = tempfile::tempdir()?;
    let error = export_all(&store, &framework, &checks, dir.path(), Some(&SigningKey::generate()?))
        .await
        .err()
        .ok_or("exported")?;
    assert!(error.to_string().starts_with("the evidence chain does not verify (record 4"), "{error}");
    assert!(!dir.path().join("package.dsse.json").exists());
    Ok(())
}

async fn package() -> Result<(tempfile::TempDir, SigningKey), Box<dyn std::error::Error>> {
    let (store, framework, checks) = store_with_history().await?;
    let key = SigningKey::generate()?;
    let dir = tempfile::tempdir()?;
    export_all(&store, &framework, &checks, dir.path(), Some(&key)).await?;
    Ok((dir, key))
}

fn problem(dir: &Path, key: &SigningKey) -> Result<Problem, Box<dyn std::error::Error>> {
    verify_package(dir, &Keyring::single(key.public_key().clone()))?.err().ok_or_else(|| "verified".into())
}

#[cfg(unix)]
#[tokio::test]
async fn links_special_files_a_padded_file_and_empty_folders_are_refused() -> TestResult {
    let (dir, key) = package().await?;
    let outside = tempfile::tempdir()?;
    // An identical copy outside the package, linked in: still refused.
    std::fs::copy(dir.path().join("waivers.json"), outside.path().join("waivers.json"))?;
    std::fs::remove_file(dir.path().join("waivers.json"))?;
    std::os::unix::fs::symlink(outside.path().join("waivers.json"), dir.path().join("waivers.json"))?;
    let found = problem(dir.path(), &key)?;
    assert!(found.to_string().starts_with("waivers.json: not a regular file"), "{found}");
    std::fs::remove_file(dir.path().join("waivers.json"))?;
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("waivers.json"))?;
    assert!(problem(dir.path(), &key)?.to_string().starts_with("waivers.json: not a regular file"));
    std::fs::remove_file(dir.path().join("waivers.json"))?;
    std::fs::copy(outside.path().join("waivers.json"), dir.path().join("waivers.json"))?;
    assert!(verify_package(dir.path(), &Keyring::single(key.public_key().clone()))?.is_ok());

    // A file grown without limit is refused by its signed size before it is read.
    let file = std::fs::OpenOptions::new().append(true).open(dir.path().join("remediation.json"))?;
    file.set_len(5 << 30)?;
    let found = problem(dir.path(), &key)?;
    assert!(found.to_string().contains("bytes, signed"), "{found}");
    file.set_len(std::fs::metadata(outside.path().join("waivers.json"))?.len())?;

    let (dir, key) = package().await?;
    std::fs::create_dir(dir.path().join("controls/extra"))?;
    assert_eq!(problem(dir.path(), &key)?, Problem::FileAdded { path: "controls/extra/".into() });
    Ok(())
}

#[tokio::test]
async fn reports_and_control_files_that_say_more_than_the_chain_are_refused_even_when_signed() -> TestResult {
    // A report whose counts were edited.
    let (dir, key) = package().await?;
    let path = first_report(dir.path())?;
    let mut report: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    report["non_compliant"] = 0.into();
    report["compliance_percentage"] = 100.0.into();
    std::fs::write(&path, serde_json::to_vec(&report)?)?;
    resign(dir.path(), &key)?;
    let found = problem(dir.path(), &key)?;
    assert!(found.to_string().contains("non_compliant is 0, its evidence gives 1"), "{found}");

    // A report whose evidence is gone.
    report["evidence"] = "none".into();
    std::fs::write(&path, serde_json::to_vec(&report)?)?;
    resign(dir.path(), &key)?;
    assert!(problem(dir.path(), &key)?.to_string().contains("evidence: a list is required"));

    // A control entry keeping its record's seq and hash but showing another evidence of the run.
    let (dir, key) = package().await?;
    let control = dir.path().join("controls/demo-fw/D_2.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(&control)?)?;
    let entries = value["evidence"].as_array_mut().ok_or("no entries")?;
    let failing = entries.iter().position(|e| e["evidence"]["status"] == "fail").ok_or("no failure")?;
    let passing = entries
        .iter()
        .position(|e| e["evidence"]["status"] == "pass" && e["run_id"] == entries[failing]["run_id"])
        .ok_or("no pass")?;
    entries[failing]["evidence"] = entries[passing]["evidence"].clone();
    std::fs::write(&control, serde_json::to_vec(&value)?)?;
    resign(dir.path(), &key)?;
    assert!(matches!(problem(dir.path(), &key)?, Problem::EvidenceNotInChain { .. }));

    // No run listed, a report of a run not listed, a path spelt twice, a signing time in the future.
    let (dir, key) = package().await?;
    resign_with(dir.path(), &key, |s| s.predicate["runs"] = serde_json::json!([]))?;
    assert!(problem(dir.path(), &key)?.to_string().contains("predicate.runs: a list of at least one run"));
    let (dir, key) = package().await?;
    resign_with(dir.path(), &key, |s| {
        let runs = s.predicate["runs"].as_array_mut();
        runs.into_iter().for_each(|r| {
            r.pop();
        });
    })?;
    assert!(problem(dir.path(), &key)?.to_string().contains("a report of a run the statement does not list"));
    let (dir, key) = package().await?;
    resign_with(dir.path(), &key, |s| {
        if let Some(first) = s.subject.iter().find(|x| x.name.starts_with("controls/")).cloned() {
            s.subject.push(compliance_attest::Subject::sha256(
                first.name.replacen('/', "//", 1),
                first.sha256_hex().unwrap_or_default(),
            ));
        }
    })?;
    assert!(problem(dir.path(), &key)?.to_string().contains("outside the package, misspelt or repeated"));
    let (dir, key) = package().await?;
    resign_with(dir.path(), &key, |s| s.predicate["signed_at"] = serde_json::json!(Utc::now() + Duration::days(3000)))?;
    assert!(problem(dir.path(), &key)?.to_string().contains("is in the future"));
    Ok(())
}

#[test]
fn keyring_errors_name_the_entry_and_field_and_dates_are_accepted() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("k.pub"), SigningKey::generate()?.public_key().to_pem())?;
    std::fs::write(dir.path().join("ring.yaml"), "keys:\n  - public_key: k.pub\n    not_before: 2026-01-01\n")?;
    assert_eq!(Keyring::read(dir.path().join("ring.yaml"))?.keys().count(), 1);
    std::fs::write(dir.path().join("ring.yaml"), "keys:\n  - public_key: k.pub\n    not_before: yesterday\n")?;
    let error = Keyring::read(dir.path().join("ring.yaml")).err().ok_or("accepted")?.to_string();
    assert!(error.contains("keys[0].not_before: \"yesterday\": expected a date"), "{error}");
    std::fs::write(dir.path().join("ring.yaml"), "keys:\n  - public_key: k.pub\n---\nkeys: []\n")?;
    let error = Keyring::read(dir.path().join("ring.yaml")).err().ok_or("accepted")?.to_string();
    assert!(error.contains("several"), "{error}");
    Ok(())
}
