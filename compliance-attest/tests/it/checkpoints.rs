//! Signed checkpoints: a chain rewritten as a whole, with every hash
//! recomputed, verifies on its own; against its checkpoints it does not.

use compliance_attest::checkpoint::{append_checkpoint, read_checkpoint_file, verify_checkpoints};
use compliance_attest::{Checkpoint, Keyring, Problem, SigningKey};
use compliance_core::store::{Record, RecordKind};
use compliance_core::testkit::{InMemoryStore, append_sample_runs};

use crate::{TestResult, rehash};

/// What someone who can write the database but has no key can do: change
/// records, drop some, and recompute every hash so the chain links again.
fn rewrite(records: &mut Vec<Record>, change: impl Fn(&mut Vec<Record>)) {
    change(records);
    rehash(records);
}

async fn signed_store(
    key: &SigningKey,
) -> Result<(InMemoryStore, Vec<(String, Checkpoint)>), Box<dyn std::error::Error>> {
    let store = InMemoryStore::default();
    let mut copies = Vec::new();
    for run in 0..3 {
        append_sample_runs(&store, 1).await?;
        let checkpoint = append_checkpoint(&store, key).await?;
        copies.push((format!("copy {run}"), checkpoint));
    }
    Ok((store, copies))
}

#[tokio::test]
async fn checkpoints_after_every_run_verify_and_cover_the_chain() -> TestResult {
    let key = SigningKey::generate()?;
    let (store, copies) = signed_store(&key).await?;
    let keyring = Keyring::single(key.public_key().clone());
    let report = verify_checkpoints(&store, &keyring, &copies).await?;
    assert_eq!(report.problem, None);
    assert_eq!((report.in_chain, report.external, report.head, report.unattested()), (3, 3, 18, 0));
    // A run appended since is reported as not yet attested, not as a problem.
    append_sample_runs(&store, 1).await?;
    let report = verify_checkpoints(&store, &keyring, &copies).await?;
    assert_eq!((report.unattested(), report.problem), (5, None));
    Ok(())
}

#[tokio::test]
async fn a_chain_rewritten_without_the_key_no_longer_matches_its_checkpoints() -> TestResult {
    let key = SigningKey::generate()?;
    let (store, _) = signed_store(&key).await?;
    let keyring = Keyring::single(key.public_key().clone());
    // Record 3 (an evidence of the first run) says something else; every hash recomputed.
    store.tamper(|records| rewrite(records, |r| r[2].body = r[2].body.replace("run 0", "run 0 (edited)")));
    let found = verify_checkpoints(&store, &keyring, &[]).await?.problem.ok_or("not caught")?;
    assert!(
        matches!(&found, Problem::CheckpointMismatch { seq: 5, source_of, .. } if source_of == "chain record 6"),
        "{found}"
    );
    assert!(found.to_string().contains("the chain was rewritten"), "{found}");
    Ok(())
}

#[tokio::test]
async fn removing_the_checkpoints_too_is_caught_by_none_left_or_by_the_copies_outside() -> TestResult {
    let key = SigningKey::generate()?;
    let (store, copies) = signed_store(&key).await?;
    let keyring = Keyring::single(key.public_key().clone());
    store.tamper(|records| {
        rewrite(records, |r| {
            r.retain(|x| x.kind != RecordKind::Checkpoint);
            r[2].body = r[2].body.replace("run 0", "run 0 (edited)");
        })
    });
    let report = verify_checkpoints(&store, &keyring, &[]).await?;
    assert_eq!(report.problem, Some(Problem::NoCheckpoint));
    let found = verify_checkpoints(&store, &keyring, &copies).await?.problem.ok_or("not caught")?;
    assert!(
        matches!(&found, Problem::CheckpointMismatch { seq: 5, source_of, .. } if source_of == "copy 0"),
        "{found}"
    );
    Ok(())
}

#[tokio::test]
async fn a_cut_chain_a_forged_checkpoint_and_the_wrong_key_are_named() -> TestResult {
    let key = SigningKey::generate()?;
    let (store, copies) = signed_store(&key).await?;
    let keyring = Keyring::single(key.public_key().clone());
    // The last run and its checkpoint removed: the copy of that checkpoint names a record that is gone.
    store.tamper(|records| records.truncate(12));
    let found = verify_checkpoints(&store, &keyring, &copies).await?.problem.ok_or("not caught")?;
    assert!(found.to_string().contains("the chain ends at record 12: records were removed"), "{found}");

    // A checkpoint whose hash was edited no longer carries a valid signature.
    let (store, copies) = signed_store(&key).await?;
    let mut forged = copies[0].clone();
    forged.1.hash = "0".repeat(64);
    let found = verify_checkpoints(&store, &keyring, &[forged]).await?.problem.ok_or("not caught")?;
    assert!(matches!(found, Problem::BadSignature { .. }), "{found}");

    let stranger = Keyring::single(SigningKey::generate()?.public_key().clone());
    let found = verify_checkpoints(&store, &stranger, &[]).await?.problem.ok_or("not caught")?;
    assert!(matches!(&found, Problem::BadSignature { what, .. } if what == "chain record 6"), "{found}");
    Ok(())
}

#[tokio::test]
async fn checkpoint_copies_read_back_from_json_lines_with_their_line() -> TestResult {
    let key = SigningKey::generate()?;
    let (_, copies) = signed_store(&key).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("checkpoints.jsonl");
    let lines: Vec<String> = copies.iter().map(|(_, c)| serde_json::to_string(c)).collect::<Result<_, _>>()?;
    std::fs::write(&file, lines.join("\n") + "\n")?;
    let read = read_checkpoint_file(&file)?;
    assert_eq!(read.len(), 3);
    assert!(read[2].0.ends_with("checkpoints.jsonl:3"));
    assert_eq!(read[2].1, copies[2].1);
    std::fs::write(&file, "{\"seq\": 1}\n")?;
    let error = read_checkpoint_file(&file).err().ok_or("read a broken line")?;
    assert!(error.to_string().contains("checkpoints.jsonl:1: not a checkpoint"), "{error}");
    Ok(())
}
