//! Reads: rows back into records, and the queries' shared plumbing.

use compliance_core::Evidence;
use compliance_core::StoreError;
use compliance_core::store::{ChainHead, Record, RecordIndex, RecordKind, evidence_of};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::schema::COLUMNS;
use crate::{Backend, SqlStore, query_error};

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

    /// Up to `limit` records after `after`, in order. From SQLite they come
    /// as one JSON array the database builds, one row back instead of one
    /// per record: its driver hands every row over from its worker thread on
    /// its own, which cost more than checking the record (17 s instead of
    /// 35 s for a million records, README.md). PostgreSQL's rows come
    /// faster as they are (building the array made it slower).
    pub(crate) async fn records_page(&self, after: i64, limit: i64) -> Result<Vec<Record>, StoreError> {
        if self.backend == Backend::Postgres {
            let sql = format!("SELECT {COLUMNS} FROM records WHERE seq > $1 ORDER BY seq LIMIT $2");
            return self.records(&sql, vec![Bind::Int(after), Bind::Int(limit)]).await;
        }
        const PAGE: &str = "(SELECT seq, kind, run_id, check_id, subject, status, at_us, body, prev_hash, hash \
             FROM records WHERE seq > $1 ORDER BY seq LIMIT $2) p";
        let sql = format!(
            "SELECT json_group_array(json_array(seq, kind, run_id, check_id, subject, status, at_us, body, prev_hash, hash)) AS page FROM {PAGE}"
        );
        let row = sqlx::query(&sql).bind(after).bind(limit).fetch_one(&self.pool).await.map_err(query_error)?;
        let page: String = row.try_get("page").map_err(query_error)?;
        type Row = (
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            String,
            String,
            String,
        );
        let rows: Vec<Row> =
            serde_json::from_str(&page).map_err(|e| StoreError::corrupt(after.saturating_add(1), e))?;
        let mut records = rows
            .into_iter()
            .map(|(seq, kind, run_id, check_id, subject, status, at_us, body, prev_hash, hash)| {
                Ok(Record {
                    seq,
                    kind: RecordKind::parse(&kind)
                        .ok_or_else(|| StoreError::corrupt(seq, format!("unknown kind {kind:?}")))?,
                    index: RecordIndex { run_id, check_id, subject, status, at_us },
                    body,
                    prev_hash,
                    hash,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The order of an aggregate is the database's; the chain's is by position.
        records.sort_unstable_by_key(|r| r.seq);
        Ok(records)
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
