//! Appends: locking the chain's head, sealing and inserting records with
//! their derived indexes; and pruning, which appends its note.

use std::collections::HashMap;

use chrono::Utc;
use compliance_core::StoreError;
use compliance_core::store::{
    ChainHead, NewRecord, PruneReport, Record, RecordKind, Retention, StoredRun, prune_record, seal_all,
};
use sqlx::{Any, Row, Transaction};
use tracing::info;

use crate::read::record_of;
use crate::schema::COLUMNS;
use crate::{Backend, SqlStore, query_error};

impl Backend {
    /// Rows per multi-row INSERT, measured: SQLite slows down past ~50 rows
    /// (hundreds of parameters) per statement, PostgreSQL gains from round
    /// trips saved. Both are well under the databases' parameter limits.
    fn batch(self) -> usize {
        match self {
            Backend::Sqlite => 50,
            Backend::Postgres => 500,
        }
    }
}

/// `$1, $2, …` placeholders for `rows` rows of `columns` columns, from `$start`.
fn placeholders(rows: usize, columns: usize, start: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..columns).map(|c| format!("${}", start + r * columns + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqlStore {
    /// Locks the chain's head for this transaction and reads it.
    pub(crate) async fn lock_head(tx: &mut Transaction<'static, Any>) -> Result<ChainHead, StoreError> {
        // A write first: SQLite takes its write lock, PostgreSQL locks the row, so appends queue here.
        sqlx::query("UPDATE chain_head SET seq = seq WHERE id = 1").execute(&mut **tx).await.map_err(query_error)?;
        let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await
            .map_err(query_error)?;
        Ok(ChainHead { seq: row.try_get("seq").map_err(query_error)?, hash: row.try_get("hash").map_err(query_error)? })
    }

    pub(crate) async fn insert(
        tx: &mut Transaction<'static, Any>,
        records: &[Record],
        batch: usize,
    ) -> Result<(), StoreError> {
        for chunk in records.chunks(batch) {
            let sql = format!("INSERT INTO records ({COLUMNS}) VALUES {}", placeholders(chunk.len(), 10, 1));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.seq)
                    .bind(r.kind.as_str())
                    .bind(r.index.run_id.clone())
                    .bind(r.index.check_id.clone())
                    .bind(r.index.subject.clone())
                    .bind(r.index.status.clone())
                    .bind(r.index.at_us)
                    .bind(r.body.as_str())
                    .bind(r.prev_hash.as_str())
                    .bind(r.hash.as_str());
            }
            q.execute(&mut **tx).await.map_err(query_error)?;
        }
        // The latest evidence per check and resource, for the query auditors and dashboards ask most.
        let mut latest: HashMap<(&str, &str), i64> = HashMap::new();
        for r in records.iter().filter(|r| r.kind == RecordKind::Evidence) {
            if let (Some(check), Some(subject)) = (r.index.check_id.as_deref(), r.index.subject.as_deref()) {
                latest.insert((check, subject), r.seq);
            }
        }
        let latest: Vec<_> = latest.into_iter().collect();
        for chunk in latest.chunks(batch) {
            let sql = format!(
                "INSERT INTO latest (check_id, subject, seq) VALUES {} ON CONFLICT (check_id, subject) DO UPDATE SET seq = excluded.seq",
                placeholders(chunk.len(), 3, 1)
            );
            let mut q = sqlx::query(&sql);
            for ((check, subject), seq) in chunk {
                q = q.bind(*check).bind(*subject).bind(*seq);
            }
            q.execute(&mut **tx).await.map_err(query_error)?;
        }
        let mut mapping = Vec::new();
        for r in records.iter().filter(|r| r.kind == RecordKind::Controls) {
            let body: serde_json::Value = serde_json::from_str(&r.body).map_err(|e| StoreError::corrupt(r.seq, e))?;
            let run_id = r.index.run_id.clone().unwrap_or_default();
            for (framework, controls) in body["frameworks"].as_object().into_iter().flatten() {
                for (control, checks) in controls.as_object().into_iter().flatten() {
                    for check in checks.as_array().into_iter().flatten().filter_map(|c| c.as_str()) {
                        mapping.push((run_id.clone(), framework.clone(), control.clone(), check.to_owned()));
                    }
                }
            }
        }
        for chunk in mapping.chunks(batch) {
            let sql = format!(
                "INSERT INTO run_controls (run_id, framework, control, check_id) VALUES {}",
                placeholders(chunk.len(), 4, 1)
            );
            let mut q = sqlx::query(&sql);
            for (run, framework, control, check) in chunk {
                q = q.bind(run.as_str()).bind(framework.as_str()).bind(control.as_str()).bind(check.as_str());
            }
            q.execute(&mut **tx).await.map_err(query_error)?;
        }
        Ok(())
    }

    pub(crate) async fn append_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Record>, StoreError> {
        let head = Self::lock_head(tx).await?;
        let (sealed, head) = seal_all(&head, records);
        Self::insert(tx, &sealed, self.backend.batch()).await?;
        sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(head.seq)
            .bind(head.hash.as_str())
            .execute(&mut **tx)
            .await
            .map_err(query_error)?;
        Ok(sealed)
    }

    /// Removes the oldest runs beyond `retention` (see [`compliance_core::EvidenceStore::prune`]).
    pub(crate) async fn prune_runs(&self, retention: &Retention) -> Result<PruneReport, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error)?;
        Self::lock_head(&mut tx).await?;
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM records WHERE kind = 'run' ORDER BY seq"))
            .fetch_all(&mut *tx)
            .await
            .map_err(query_error)?;
        let runs: Vec<StoredRun> = rows
            .iter()
            .map(record_of)
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .filter_map(StoredRun::from_record)
            .collect();
        let first_kept = retention.first_kept(&runs, Utc::now());
        if first_kept == 0 {
            return Ok(PruneReport::default());
        }
        // Everything before the first run kept goes: its runs, and the plans and notes of that time.
        let cut = runs.get(first_kept).map_or(i64::MAX, |r| r.seq);
        let last = sqlx::query("SELECT seq, hash FROM records WHERE seq < $1 ORDER BY seq DESC LIMIT 1")
            .bind(cut)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_error)?;
        let Some(last) = last else { return Ok(PruneReport::default()) };
        let until: (i64, String) =
            (last.try_get("seq").map_err(query_error)?, last.try_get("hash").map_err(query_error)?);
        let removed: i64 = sqlx::query("SELECT COUNT(*) AS n FROM records WHERE seq < $1")
            .bind(cut)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_error)?
            .try_get("n")
            .map_err(query_error)?;
        for sql in [
            "DELETE FROM latest WHERE seq < $1",
            "DELETE FROM run_controls WHERE run_id IN (SELECT run_id FROM records WHERE kind = 'run' AND seq < $1)",
            "DELETE FROM records WHERE seq < $1",
        ] {
            sqlx::query(sql).bind(cut).execute(&mut *tx).await.map_err(query_error)?;
        }
        let records = u64::try_from(removed).unwrap_or_default();
        self.append_in(&mut tx, vec![prune_record(until.0, &until.1, first_kept, records, Utc::now())]).await?;
        tx.commit().await.map_err(query_error)?;
        info!(runs = first_kept, records, "evidence store pruned");
        Ok(PruneReport::new(first_kept, records, Some(until)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
    }
}
