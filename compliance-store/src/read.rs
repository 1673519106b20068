//! Reads: rows back into records, and the queries' shared plumbing.

use compliance_core::Evidence;
use compliance_core::StoreError;
use compliance_core::store::{ChainHead, Record, RecordIndex, RecordKind, evidence_of};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{SqlStore, query_error};

pub(crate) fn record_of(row: &AnyRow) -> Result<Record, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(query_error)?;
    let kind: String = row.try_get("kind").map_err(query_error)?;
    Ok(Record {
        seq,
        kind: RecordKind::parse(&kind).ok_or_else(|| StoreError::corrupt(seq, format!("unknown kind {kind:?}")))?,
        index: RecordIndex {
            run_id: row.try_get("run_id").map_err(query_error)?,
            check_id: row.try_get("check_id").map_err(query_error)?,
            subject: row.try_get("subject").map_err(query_error)?,
            status: row.try_get("status").map_err(query_error)?,
            at_us: row.try_get("at_us").map_err(query_error)?,
        },
        body: row.try_get("body").map_err(query_error)?,
        prev_hash: row.try_get("prev_hash").map_err(query_error)?,
        hash: row.try_get("hash").map_err(query_error)?,
    })
}

impl SqlStore {
    pub(crate) async fn records(&self, sql: &str, binds: Vec<Bind>) -> Result<Vec<Record>, StoreError> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        q.fetch_all(&self.pool).await.map_err(query_error)?.iter().map(record_of).collect()
    }

    pub(crate) async fn head(&self) -> Result<ChainHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error)?;
        Ok(ChainHead { seq: row.try_get("seq").map_err(query_error)?, hash: row.try_get("hash").map_err(query_error)? })
    }
}

/// A query parameter.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

pub(crate) fn evidence_list(records: &[Record]) -> Result<Vec<Evidence>, StoreError> {
    records.iter().map(evidence_of).collect()
}
