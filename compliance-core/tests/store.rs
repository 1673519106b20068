//! The in-memory evidence store: the conformance suite, and the verifier
//! catching each kind of tampering.

use compliance_core::store::{ChainProblem, EvidenceStore, Retention};
use compliance_core::testkit::{InMemoryStore, append_sample_runs, check_store};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn store_with_runs(runs: usize) -> Result<InMemoryStore, Box<dyn std::error::Error>> {
    let store = InMemoryStore::default();
    append_sample_runs(&store, runs).await?;
    Ok(store)
}

#[tokio::test]
async fn the_in_memory_store_passes_the_conformance_suite() -> TestResult {
    check_store(&InMemoryStore::default()).await?;
    Ok(())
}

#[tokio::test]
async fn a_changed_record_is_caught() -> TestResult {
    let store = store_with_runs(2).await?;
    store.tamper(|records| records[2].body = records[2].body.replace("\"pass\"", "\"fail\""));
    let report = store.verify().await?;
    assert!(matches!(report.problem, Some(ChainProblem::Changed { seq: 3, .. })), "{:?}", report.problem);
    Ok(())
}

#[tokio::test]
async fn a_changed_index_column_is_caught() -> TestResult {
    let store = store_with_runs(1).await?;
    store.tamper(|records| records[2].index.status = Some("pass_forever".into()));
    let report = store.verify().await?;
    assert!(matches!(report.problem, Some(ChainProblem::Changed { seq: 3, .. })), "{:?}", report.problem);
    Ok(())
}

#[tokio::test]
async fn a_removed_record_is_caught() -> TestResult {
    let store = store_with_runs(2).await?;
    store.tamper(|records| {
        records.remove(3);
    });
    let report = store.verify().await?;
    assert!(matches!(report.problem, Some(ChainProblem::Removed { seq: 4, .. })), "{:?}", report.problem);
    Ok(())
}

#[tokio::test]
async fn a_removed_tail_is_caught() -> TestResult {
    let store = store_with_runs(2).await?;
    store.tamper(|records| {
        records.pop();
    });
    let report = store.verify().await?;
    assert!(matches!(report.problem, Some(ChainProblem::Removed { .. })), "{:?}", report.problem);
    Ok(())
}

#[tokio::test]
async fn reordered_records_are_caught() -> TestResult {
    let store = store_with_runs(2).await?;
    // Swap two evidence records, keeping their positions: the links break.
    store.tamper(|records| {
        let (a, b) = (records[2].clone(), records[3].clone());
        records[2] = compliance_core::store::Record { seq: 3, ..b };
        records[3] = compliance_core::store::Record { seq: 4, ..a };
    });
    let report = store.verify().await?;
    assert!(
        matches!(&report.problem, Some(ChainProblem::Reordered { seq: 3, detail }) if detail.contains("position 4")),
        "{:?}",
        report.problem
    );
    Ok(())
}

#[tokio::test]
async fn a_renumbered_chain_after_a_removal_is_caught() -> TestResult {
    let store = store_with_runs(2).await?;
    // Remove a record and renumber the rest, as someone covering tracks would.
    store.tamper(|records| {
        records.remove(3);
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i64::try_from(i).unwrap_or_default() + 1;
        }
    });
    let report = store.verify().await?;
    assert!(report.problem.is_some());
    Ok(())
}

#[tokio::test]
async fn pruning_keeps_the_chain_verifiable_and_tampering_after_it_is_caught() -> TestResult {
    let store = store_with_runs(5).await?;
    let pruned = store.prune(&Retention::runs(2)).await?;
    assert_eq!(pruned.runs, 3);
    assert_eq!(store.runs(None, None).await?.len(), 2);
    assert!(store.verify().await?.is_intact());
    // Pruning again, later, still verifies.
    store.prune(&Retention::runs(1)).await?;
    let report = store.verify().await?;
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!(report.runs, 1);
    store.tamper(|records| records[0].body.push(' '));
    assert!(!store.verify().await?.is_intact());
    Ok(())
}

#[test]
fn canonical_json_does_not_depend_on_key_order() {
    let a = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": null}});
    let b = serde_json::json!({"a": {"c": null, "d": [1, {"y": 1, "z": 0}]}, "b": 1});
    assert_eq!(compliance_core::store::canonical_json(&a), compliance_core::store::canonical_json(&b));
}

/// Stored chains were sealed over the bytes of a sorted copy serialised by
/// serde_json; the canonical writer must give those bytes exactly, escapes
/// and numbers included, or old chains stop verifying.
#[test]
fn canonical_json_is_byte_for_byte_what_stored_chains_were_sealed_with() {
    fn sorted_copy(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let ordered: std::collections::BTreeMap<&String, serde_json::Value> =
                    map.iter().map(|(k, v)| (k, sorted_copy(v))).collect();
                serde_json::Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted_copy).collect()),
            other => other.clone(),
        }
    }
    let value = serde_json::json!({
        "zeta": "quote \" backslash \\ newline \n tab \t control \u{1} é 漢 😀",
        "Alpha": [1.5, -0.0, 1e300, 12345678901234567890u64, -9223372036854775808i64, true, null, {}, []],
        "alpha": {"b\u{7f}": {"y": [{"k": "v", "a": 1}]}, "a": "", "": 0},
        "_": {"nested": {"deeper": {"z": 1, "Z": 2, "0": 3}}}
    });
    assert_eq!(compliance_core::store::canonical_json(&value), sorted_copy(&value).to_string());
    let text = compliance_core::store::canonical_json(&value);
    assert!(text.starts_with(r#"{"Alpha":[1.5,-0.0,1e+300,"#), "{text}");
}
