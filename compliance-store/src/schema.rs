//! The schema and its migrations.

use chrono::Utc;
use compliance_core::StoreError;
use tracing::info;

use crate::{Backend, SqlStore, query_error};

/// Schema versions, applied in order when a store is opened. `{seq}` is
/// the chain position's column type.
const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE IF NOT EXISTS records (
            seq {seq} PRIMARY KEY,
            kind TEXT NOT NULL,
            run_id TEXT,
            check_id TEXT,
            subject TEXT,
            status TEXT,
            at_us BIGINT,
            body TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS records_kind_run ON records (kind, run_id)",
        "CREATE INDEX IF NOT EXISTS records_subject ON records (subject, seq)",
        "CREATE INDEX IF NOT EXISTS records_check_at ON records (check_id, at_us)",
        "CREATE TABLE IF NOT EXISTS chain_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
        "INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000') ON CONFLICT (id) DO NOTHING",
        "CREATE TABLE IF NOT EXISTS latest (check_id TEXT NOT NULL, subject TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (check_id, subject))",
        "CREATE TABLE IF NOT EXISTS run_controls (run_id TEXT NOT NULL, framework TEXT NOT NULL, control TEXT NOT NULL, check_id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS run_controls_lookup ON run_controls (framework, control, run_id, check_id)",
    ],
)];

/// The latest schema version.
pub const SCHEMA_VERSION: i64 = 1;

/// The columns of `records`, in insert order.
pub(crate) const COLUMNS: &str = "seq, kind, run_id, check_id, subject, status, at_us, body, prev_hash, hash";

impl SqlStore {
    /// Fails unless the database holds an evidence store (its migrations table).
    pub(crate) async fn require_schema(&self, shown_url: &str) -> Result<(), StoreError> {
        let found = sqlx::query("SELECT COUNT(*) FROM schema_migrations").fetch_one(&self.pool).await;
        match found {
            Ok(_) => Ok(()),
            Err(e) => Err(StoreError::unavailable(
                format!("{shown_url}: no evidence store there (a monitor or a scan creates one)"),
                e,
            )),
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(query_error)?;
        let seq_type = match self.backend {
            Backend::Sqlite => "INTEGER",
            Backend::Postgres => "BIGINT",
        };
        for (version, statements) in MIGRATIONS {
            let applied = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_error)?;
            if applied.is_some() {
                continue;
            }
            let mut tx = self.pool.begin().await.map_err(query_error)?;
            for statement in *statements {
                sqlx::query(&statement.replace("{seq}", seq_type)).execute(&mut *tx).await.map_err(query_error)?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
            )
            .bind(*version)
            .bind(Utc::now().to_rfc3339())
            .execute(&mut *tx)
            .await
            .map_err(query_error)?;
            tx.commit().await.map_err(query_error)?;
            info!(version, "evidence store schema migrated");
        }
        Ok(())
    }
}
