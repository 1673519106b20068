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
    /// `SELECT` of the columns `columns` (name and SQL type) from a JSON
    /// array of rows, each row an array in column order, bound as `$1`: one
    /// parameter for thousands of rows. Measured: binding 10 parameters a
    /// row made SQLite look each placeholder's name up again for every
    /// parameter of the statement (`sqlite3_bind_parameter_name`), and both
    /// databases paid a round of conversions per value; the database's own
    /// JSON reader does it in one pass.
    fn rows_from_json(self, columns: &[(&str, &str)]) -> String {
        let cells: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (name, sql_type))| match self {
                Backend::Sqlite => format!("r.value ->> {i} AS {name}"),
                Backend::Postgres => format!("(r.value ->> {i})::{sql_type} AS {name}"),
            })
            .collect();
        let source = match self {
            Backend::Sqlite => "json_each($1) r",
            Backend::Postgres => "jsonb_array_elements($1::jsonb) r(value)",
        };
        format!("SELECT {} FROM {source}", cells.join(", "))
    }
}

/// Rows per statement: bounds the JSON text bound at once (a 10,000-record
/// run is a few MB).
const ROWS_PER_STATEMENT: usize = 20_000;

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
        backend: Backend,
        records: &[Record],
    ) -> Result<(), StoreError> {
        let text = |v: &Option<String>| v.as_deref().map_or(serde_json::Value::Null, |s| s.into());
        let record_columns = [
            ("seq", "bigint"),
            ("kind", "text"),
            ("run_id", "text"),
            ("check_id", "text"),
            ("subject", "text"),
            ("status", "text"),
            ("at_us", "bigint"),
            ("body", "text"),
            ("prev_hash", "text"),
            ("hash", "text"),
        ];
        let sql = format!("INSERT INTO records ({COLUMNS}) {}", backend.rows_from_json(&record_columns));
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<serde_json::Value> = chunk
                .iter()
                .map(|r| {
                    serde_json::json!([
                        r.seq,
                        r.kind.as_str(),
                        text(&r.index.run_id),
                        text(&r.index.check_id),
                        text(&r.index.subject),
                        text(&r.index.status),
                        r.index.at_us,
                        r.body,
                        r.prev_hash,
                        r.hash
                    ])
                })
                .collect();
            Self::execute_rows(tx, &sql, &rows).await?;
        }
        // The latest evidence per check and resource, for the query auditors and dashboards ask most.
        let mut latest: HashMap<(&str, &str), i64> = HashMap::new();
        for r in records.iter().filter(|r| r.kind == RecordKind::Evidence) {
            if let (Some(check), Some(subject)) = (r.index.check_id.as_deref(), r.index.subject.as_deref()) {
                latest.insert((check, subject), r.seq);
            }
        }
        let latest: Vec<serde_json::Value> =
            latest.into_iter().map(|((check, subject), seq)| serde_json::json!([check, subject, seq])).collect();
        // `WHERE true` lets SQLite tell the upsert's ON CONFLICT from a join's ON.
        let sql = format!(
            "INSERT INTO latest (check_id, subject, seq) {} WHERE true ON CONFLICT (check_id, subject) DO UPDATE SET seq = excluded.seq",
            backend.rows_from_json(&[("check_id", "text"), ("subject", "text"), ("seq", "bigint")])
        );
        for chunk in latest.chunks(ROWS_PER_STATEMENT) {
            Self::execute_rows(tx, &sql, chunk).await?;
        }
        let mut mapping = Vec::new();
        for r in records.iter().filter(|r| r.kind == RecordKind::Controls) {
            let body: serde_json::Value = serde_json::from_str(&r.body).map_err(|e| StoreError::corrupt(r.seq, e))?;
            let run_id = r.index.run_id.clone().unwrap_or_default();
            for (framework, controls) in body["frameworks"].as_object().into_iter().flatten() {
                for (control, checks) in controls.as_object().into_iter().flatten() {
                    for check in checks.as_array().into_iter().flatten().filter_map(|c| c.as_str()) {
                        mapping.push(serde_json::json!([run_id, framework, control, check]));
                    }
                }
            }
        }
        let sql = format!(
            "INSERT INTO run_controls (run_id, framework, control, check_id) {}",
            backend.rows_from_json(&[
                ("run_id", "text"),
                ("framework", "text"),
                ("control", "text"),
                ("check_id", "text")
            ])
        );
        for chunk in mapping.chunks(ROWS_PER_STATEMENT) {
            Self::execute_rows(tx, &sql, chunk).await?;
        }
        Ok(())
    }

    /// Runs `sql` with `rows` as its one JSON parameter.
    async fn execute_rows(
        tx: &mut Transaction<'static, Any>,
        sql: &str,
        rows: &[serde_json::Value],
    ) -> Result<(), StoreError> {
        // Serialising values serde_json built cannot fail.
        let rows = serde_json::to_string(rows).unwrap_or_default();
        sqlx::query(sql).bind(rows).execute(&mut **tx).await.map_err(query_error)?;
        Ok(())
    }

    pub(crate) async fn append_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Record>, StoreError> {
        let head = Self::lock_head(tx).await?;
        let (sealed, head) = seal_all(&head, records);
        Self::insert(tx, self.backend, &sealed).await?;
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
