//! The evidence store's records as a backend reads them back: a list of
//! `Record`s (seq, kind, body, index columns, prev_hash, hash; JSON here,
//! rows in SQLite or PostgreSQL), decoded and verified with the public
//! functions every backend uses: `evidence_of`, `StoredRun::from_record`,
//! `fold_plan`, `index_of`, `canonical_json` and `verify_chain` (with the
//! prune records and the head as a backend passes them).
//!
//! A store's content is hostile when someone tampered with it. Any bytes:
//! no panic, no hang, memory bounded. The fuzzer cannot forge SHA-256, so
//! the records are verified twice: as given (tampering is found at the
//! first hash), and resealed (index columns and hashes recomputed over the
//! given order, seqs and bodies), which takes the verifier past the hash
//! check to the prune, order and run-length logic.
#![no_main]

use compliance_core::store::{
    ChainHead, Record, RecordKind, StoredRun, canonical_json, evidence_of, fold_plan, index_of, seal, verify_chain,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn decode(records: &[Record]) {
    for record in records {
        assert_eq!(RecordKind::parse(record.kind.as_str()), Some(record.kind), "kind names round-trip");
        match record.kind {
            RecordKind::Evidence => {
                if let Ok(evidence) = evidence_of(record) {
                    let _ = serde_json::to_string(&evidence);
                }
            }
            RecordKind::Run => {
                let _ = StoredRun::from_record(record);
            }
            _ => {}
        }
        if let Ok(body) = serde_json::from_str::<Value>(&record.body) {
            let _ = index_of(record.kind, &body);
            let _ = canonical_json(&body);
        }
    }
    if let Ok(Some(plan)) = fold_plan(records) {
        let _ = serde_json::to_string(&plan);
    }
}

fn verify(records: &[Record], head: &ChainHead) {
    let prunes: Vec<Record> = records.iter().filter(|r| r.kind == RecordKind::Prune).cloned().collect();
    let report = verify_chain(records.iter().cloned(), &prunes, head);
    if let Some(problem) = &report.problem {
        let _ = problem.to_string();
        let _ = problem.seq();
    }
}

/// The same records with their index columns and hashes made consistent:
/// the first keeps its `prev_hash` (so a prune note can match it), each
/// next one links to the one before.
fn reseal(records: &[Record]) -> Vec<Record> {
    let mut prev = records.first().map(|r| r.prev_hash.clone()).unwrap_or_default();
    records
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            let hash = seal(&prev, r.seq, r.kind, &r.body);
            Record {
                seq: r.seq,
                kind: r.kind,
                body: r.body.clone(),
                index: index_of(r.kind, &body),
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

fn head_of(records: &[Record]) -> ChainHead {
    records.last().map(|r| ChainHead { seq: r.seq, hash: r.hash.clone() }).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(records) = serde_json::from_slice::<Vec<Record>>(data) else {
        return;
    };
    decode(&records);
    verify(&records, &head_of(&records));
    let resealed = reseal(&records);
    verify(&resealed, &head_of(&resealed));
});
