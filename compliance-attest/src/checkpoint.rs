//! Signed checkpoints of the evidence chain.
//!
//! The chain's hashes show that no record was changed, removed or moved,
//! but whoever can write the database can recompute every hash. A
//! checkpoint is the head (sequence and hash) at a time, signed with a key
//! the database's owner does not hold alone: a chain rewritten without the
//! key no longer matches it. The monitor appends one after every run (a
//! `checkpoint` record) and can copy it outside the database (a file, a URL).

use chrono::{DateTime, Utc};
use compliance_core::EvidenceStore;
use compliance_core::store::{ChainHead, NewRecord, Record, RecordKind, StoreError, canonical_json, checkpoint_record};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dsse::pae;
use crate::{Keyring, Problem, SigningKey};

/// The DSSE payload type of a checkpoint.
pub const CHECKPOINT_TYPE: &str = "application/vnd.compliance-rs.checkpoint+json";

/// The chain's head at a time, signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The record signed for.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// When it was signed.
    pub at: DateTime<Utc>,
    /// The signing key's fingerprint.
    pub key: String,
    /// Ed25519 over `PAE(CHECKPOINT_TYPE, canonical JSON of {seq, hash, at, key})`, base64.
    pub signature: String,
}

impl Checkpoint {
    fn signed_bytes(seq: i64, hash: &str, at: DateTime<Utc>, key: &str) -> Vec<u8> {
        let statement = canonical_json(&json!({ "seq": seq, "hash": hash, "at": at, "key": key }));
        pae(CHECKPOINT_TYPE, statement.as_bytes())
    }

    /// Signs `head` now.
    pub fn sign(head: &ChainHead, key: &SigningKey) -> Self {
        use base64::Engine;
        let at = Utc::now();
        let signature = key.sign(&Self::signed_bytes(head.seq, &head.hash, at, key.fingerprint()));
        Self {
            seq: head.seq,
            hash: head.hash.clone(),
            at,
            key: key.fingerprint().to_owned(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        }
    }

    /// Checks the signature with the keyring, and that the key was valid
    /// when it signed. `what` names the checkpoint in problems.
    pub fn verify(&self, keyring: &Keyring, what: &str) -> Result<(), Problem> {
        use base64::Engine;
        let message = Self::signed_bytes(self.seq, &self.hash, self.at, &self.key);
        let signature = base64::engine::general_purpose::STANDARD.decode(&self.signature).unwrap_or_default();
        let key = keyring
            .keys()
            .find(|k| k.fingerprint() == self.key && k.verify(&message, &signature))
            .ok_or_else(|| Problem::BadSignature { what: what.to_owned(), keys: self.key.clone() })?;
        keyring.check_valid(key, self.at, what)
    }

    /// The chain record that stores it.
    pub fn record(&self) -> NewRecord {
        checkpoint_record(serde_json::to_value(self).unwrap_or_default())
    }

    /// The checkpoint a `checkpoint` record holds.
    pub fn from_record(record: &Record) -> Option<Self> {
        Self::from_body(&record.body)
    }

    fn from_body(body: &str) -> Option<Self> {
        let body: serde_json::Value = serde_json::from_str(body).ok()?;
        serde_json::from_value(body.get("checkpoint")?.clone()).ok()
    }
}

/// Checks the `checkpoint` record at `seq` (its `body`, and the hash of the
/// record before it, `prev_hash`): it holds a checkpoint, signed by a key of
/// the keyring valid at its time, of exactly the record before it. `source`
/// names it in problems. The one check for a store's chain and a package's.
pub fn verify_record(
    seq: i64,
    body: &str,
    prev_hash: &str,
    keyring: &Keyring,
    source: &str,
) -> Result<Checkpoint, Problem> {
    let mismatch =
        |at: i64, detail: String| Problem::CheckpointMismatch { seq: at, source_of: source.to_owned(), detail };
    let checkpoint = Checkpoint::from_body(body).ok_or_else(|| mismatch(seq, "not a checkpoint".into()))?;
    checkpoint.verify(keyring, source)?;
    if checkpoint.seq != seq - 1 || checkpoint.hash != prev_hash {
        return Err(mismatch(
            checkpoint.seq,
            format!(
                "signed record {} with hash {}, but the record before it is {} with hash {prev_hash}: the chain was rewritten",
                checkpoint.seq,
                checkpoint.hash,
                seq - 1
            ),
        ));
    }
    Ok(checkpoint)
}

/// Signs the store's head and appends the checkpoint right after it, in one
/// atomic step (retried if another writer appended in between), so a
/// checkpoint always signs the record before it.
pub async fn append_checkpoint(store: &dyn EvidenceStore, key: &SigningKey) -> Result<Checkpoint, StoreError> {
    for _ in 0..8 {
        let head = store.head().await?;
        let checkpoint = Checkpoint::sign(&head, key);
        if store.append_if_head(&head, vec![checkpoint.record()]).await?.is_some() {
            return Ok(checkpoint);
        }
    }
    Err(StoreError::Query {
        message: "the chain kept moving: no checkpoint appended after 8 tries".into(),
        source: None,
    })
}

/// What [`verify_checkpoints`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// Checkpoints found in the chain, each verified.
    pub in_chain: usize,
    /// Checkpoints given from outside the database, each verified.
    pub external: usize,
    /// External checkpoints of records removed by retention (not comparable).
    pub pruned: usize,
    /// The chain's last record.
    pub head: i64,
    /// The last record a verified checkpoint covers.
    pub attested_through: i64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl CheckpointReport {
    /// Records after the last checkpoint: appended since, not yet signed.
    pub fn unattested(&self) -> i64 {
        self.head - self.attested_through
    }
}

/// Checks every checkpoint in the chain, and `external` ones (copies kept
/// outside the database, each with where it came from), against the
/// store's records and the keyring. Run it after the chain itself verified
/// ([`EvidenceStore::verify`]): this adds that the chain is the one that
/// was signed. A chain with no checkpoint at all is a problem.
pub async fn verify_checkpoints(
    store: &dyn EvidenceStore,
    keyring: &Keyring,
    external: &[(String, Checkpoint)],
) -> Result<CheckpointReport, StoreError> {
    const PAGE: usize = 5_000;
    let mut report = CheckpointReport::default();
    for (source, checkpoint) in external {
        if let Err(problem) = checkpoint.verify(keyring, source) {
            report.problem = Some(problem);
            return Ok(report);
        }
    }
    let mut wanted: std::collections::HashMap<i64, Vec<&(String, Checkpoint)>> = std::collections::HashMap::new();
    for entry in external {
        wanted.entry(entry.1.seq).or_default().push(entry);
    }
    let mismatch = |seq: i64, source: &str, detail: String| Problem::CheckpointMismatch {
        seq,
        source_of: source.to_owned(),
        detail,
    };
    let mut after = i64::MIN;
    let mut first: Option<i64> = None;
    loop {
        let page = store.records_after(after, PAGE).await?;
        let Some(last) = page.last().map(|r| r.seq) else { break };
        for record in &page {
            first.get_or_insert(record.seq);
            report.head = record.seq;
            for (source, checkpoint) in wanted.remove(&record.seq).unwrap_or_default() {
                if checkpoint.hash != record.hash {
                    report.problem = Some(mismatch(
                        record.seq,
                        source,
                        format!(
                            "signed hash {}, the chain has {}: the chain was rewritten",
                            checkpoint.hash, record.hash
                        ),
                    ));
                    return Ok(report);
                }
                report.external += 1;
                report.attested_through = report.attested_through.max(record.seq);
            }
            if record.kind != RecordKind::Checkpoint {
                continue;
            }
            let source = format!("chain record {}", record.seq);
            if let Err(problem) = verify_record(record.seq, &record.body, &record.prev_hash, keyring, &source) {
                report.problem = Some(problem);
                return Ok(report);
            }
            report.in_chain += 1;
            report.attested_through = record.seq;
        }
        after = last;
    }
    for (seq, entries) in wanted {
        for (source, _) in entries {
            if first.is_some_and(|f| seq < f) {
                report.pruned += 1;
            } else {
                report.problem = Some(mismatch(
                    seq,
                    source,
                    format!("the chain ends at record {}: records were removed", report.head),
                ));
                return Ok(report);
            }
        }
    }
    if report.in_chain + report.external == 0 {
        report.problem = Some(Problem::NoCheckpoint);
    }
    Ok(report)
}

/// Reads checkpoints kept outside the database: JSON Lines, one checkpoint
/// a line, as the monitor writes them. Each is named `FILE:LINE`.
pub fn read_checkpoint_file(path: &std::path::Path) -> Result<Vec<(String, Checkpoint)>, crate::AttestError> {
    // A checkpoint line is about 300 bytes: 256 MiB is most of a million.
    let text = crate::keys::read_limited(path, 256 << 20)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let source = format!("{}:{}", path.display(), i + 1);
        let checkpoint = serde_json::from_str(line)
            .map_err(|e| crate::AttestError::Invalid(format!("{source}: not a checkpoint: {e}")))?;
        out.push((source, checkpoint));
    }
    if out.is_empty() {
        return Err(crate::AttestError::Invalid(format!("{}: no checkpoint in it", path.display())));
    }
    Ok(out)
}
