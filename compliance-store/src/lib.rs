//! # compliance-store
//!
//! Evidence history for compliance-rs: every run, its evidence, gaps,
//! waivers in force and control mapping, remediation plans, decisions and
//! outcomes, kept as a tamper-evident chain of records
//! ([`compliance_core::store`]). One implementation over two databases:
//!
//! - **SQLite** (`sqlite://compliance.db`): embedded, a file, no server;
//!   the default of `compliance monitor`.
//! - **PostgreSQL** (`postgres://user:password@host/db`): for several
//!   monitors, across accounts and clusters, writing to one place. Appends
//!   are serialised on the chain's head row, so the chain stays one line.
//!
//! The schema is versioned; migrations run when a store is opened.
//!
//! ```no_run
//! use compliance_core::EvidenceStore;
//! use compliance_store::SqlStore;
//! # #[tokio::main] async fn main() -> Result<(), compliance_core::StoreError> {
//! let store = SqlStore::open("sqlite://target/compliance.db").await?;
//! for evidence in store.latest().await? {
//!     println!("{} {} {}", evidence.check_id, evidence.resource.id, evidence.status);
//! }
//! let report = store.verify().await?;
//! assert!(report.is_intact(), "{:?}", report.problem);
//! # Ok(()) }
//! ```
//!
//! ## Feature flags
//! - `sqlite` (default): the SQLite backend (compiled in, no system library).
//! - `postgres` (default): the PostgreSQL backend.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::Evidence;
// The trait and the chain live in compliance-core (its testkit has the in-memory store).
use compliance_core::store::{
    ChainHead, ChainProblem, ChainVerifier, NewRecord, PruneReport, Record, RecordIndex, RecordKind, evidence_of,
    fold_plan, prune_record, seal_all,
};
pub use compliance_core::store::{
    ChainReport, EvidenceStore, EvidenceStoreExt, PlanState, Retention, StoreError, StoredPlan, StoredRun,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use tracing::{debug, info};

/// The database behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// From a URL's scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

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

const COLUMNS: &str = "seq, kind, run_id, check_id, subject, status, at_us, body, prev_hash, hash";

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

/// Records read per page when verifying.
const PAGE: i64 = 10_000;

/// An evidence store in SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

fn query_error(e: sqlx::Error) -> StoreError {
    StoreError::query(e)
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

fn record_of(row: &AnyRow) -> Result<Record, StoreError> {
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
    /// Opens (creating it when it is a new SQLite file) and migrates a store:
    /// `sqlite://PATH` or `postgres://user:password@host:port/db`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        sqlx::any::install_default_drivers();
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        // One connection first: an unreachable server or a bad password fails now, with its reason,
        // rather than after the pool's acquire timeout.
        let probe = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .map_err(|e| StoreError::unavailable(redact_url(&url), e))?;
        let _ = sqlx::Connection::close(probe).await;
        let options = AnyPoolOptions::new().max_connections(4).acquire_timeout(Duration::from_secs(30));
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers do not block the writer; the busy timeout serialises writers.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA cache_size = -65536",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(&url).await.map_err(|e| StoreError::unavailable(redact_url(&url), e))?;
        let store = Self { pool, backend };
        store.migrate().await?;
        info!(backend = ?backend, "evidence store open");
        Ok(store)
    }

    /// The database behind it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn migrate(&self) -> Result<(), StoreError> {
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

    /// Locks the chain's head for this transaction and reads it.
    async fn lock_head(tx: &mut Transaction<'static, Any>) -> Result<ChainHead, StoreError> {
        // A write first: SQLite takes its write lock, PostgreSQL locks the row, so appends queue here.
        sqlx::query("UPDATE chain_head SET seq = seq WHERE id = 1").execute(&mut **tx).await.map_err(query_error)?;
        let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await
            .map_err(query_error)?;
        Ok(ChainHead { seq: row.try_get("seq").map_err(query_error)?, hash: row.try_get("hash").map_err(query_error)? })
    }

    async fn insert(tx: &mut Transaction<'static, Any>, records: &[Record], batch: usize) -> Result<(), StoreError> {
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

    async fn append_in(
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

    async fn records(&self, sql: &str, binds: Vec<Bind>) -> Result<Vec<Record>, StoreError> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        q.fetch_all(&self.pool).await.map_err(query_error)?.iter().map(record_of).collect()
    }

    async fn head(&self) -> Result<ChainHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error)?;
        Ok(ChainHead { seq: row.try_get("seq").map_err(query_error)?, hash: row.try_get("hash").map_err(query_error)? })
    }
}

impl SqlStore {
    /// The `latest` table is derived from the chain: every row must point
    /// at the newest evidence record of its check and resource, and every
    /// check and resource must have a row.
    async fn check_latest_index(&self) -> Result<Option<ChainProblem>, StoreError> {
        const NEWEST: &str =
            "SELECT check_id, subject, MAX(seq) AS seq FROM records WHERE kind = 'evidence' GROUP BY check_id, subject";
        let wrong = sqlx::query(&format!(
            "SELECT l.seq AS indexed, n.seq AS newest FROM latest l LEFT JOIN ({NEWEST}) n \
             ON n.check_id = l.check_id AND n.subject = l.subject WHERE n.seq IS NULL OR n.seq <> l.seq LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?;
        if let Some(row) = wrong {
            let indexed: i64 = row.try_get("indexed").map_err(query_error)?;
            let newest: Option<i64> = row.try_get("newest").map_err(query_error)?;
            let detail = match newest {
                Some(n) => {
                    format!("the latest-status index points to record {indexed}, but the newest evidence is record {n}")
                }
                None => format!("the latest-status index points to record {indexed}, which is not an evidence record"),
            };
            return Ok(Some(ChainProblem::Changed { seq: indexed, detail }));
        }
        let missing = sqlx::query(&format!(
            "SELECT n.seq AS newest FROM ({NEWEST}) n LEFT JOIN latest l \
             ON n.check_id = l.check_id AND n.subject = l.subject WHERE l.seq IS NULL LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?;
        if let Some(row) = missing {
            let newest: i64 = row.try_get("newest").map_err(query_error)?;
            let detail = format!("record {newest} is missing from the latest-status index");
            return Ok(Some(ChainProblem::Changed { seq: newest, detail }));
        }
        Ok(None)
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn evidence_list(records: &[Record]) -> Result<Vec<Evidence>, StoreError> {
    records.iter().map(evidence_of).collect()
}

#[async_trait]
impl EvidenceStore for SqlStore {
    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Record>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error)?;
        let sealed = self.append_in(&mut tx, records).await?;
        tx.commit().await.map_err(query_error)?;
        debug!(records = sealed.len(), "records appended");
        Ok(sealed)
    }

    async fn runs(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<Vec<StoredRun>, StoreError> {
        let from = from.map_or(i64::MIN, |t| t.timestamp_micros());
        let to = to.map_or(i64::MAX, |t| t.timestamp_micros());
        let sql =
            format!("SELECT {COLUMNS} FROM records WHERE kind = 'run' AND at_us >= $1 AND at_us < $2 ORDER BY seq");
        let records = self.records(&sql, vec![Bind::Int(from), Bind::Int(to)]).await?;
        Ok(records.iter().filter_map(StoredRun::from_record).collect())
    }

    async fn run_evidence(&self, run_id: &str) -> Result<Vec<Evidence>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM records WHERE kind = 'evidence' AND run_id = $1 ORDER BY seq");
        evidence_list(&self.records(&sql, vec![Bind::Text(run_id.to_owned())]).await?)
    }

    async fn latest(&self) -> Result<Vec<Evidence>, StoreError> {
        let sql = format!(
            "SELECT {} FROM latest l JOIN records r ON r.seq = l.seq ORDER BY l.check_id, l.subject",
            COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ")
        );
        evidence_list(&self.records(&sql, Vec::new()).await?)
    }

    async fn history(&self, resource_id: &str) -> Result<Vec<Evidence>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM records WHERE subject = $1 AND kind = 'evidence' ORDER BY seq");
        evidence_list(&self.records(&sql, vec![Bind::Text(resource_id.to_owned())]).await?)
    }

    async fn control_evidence(
        &self,
        framework: &str,
        control: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Evidence>, StoreError> {
        let columns = COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns} FROM run_controls c JOIN records r ON r.run_id = c.run_id AND r.check_id = c.check_id \
             WHERE c.framework = $1 AND c.control = $2 AND r.kind = 'evidence' AND r.at_us >= $3 AND r.at_us < $4 \
             ORDER BY r.seq"
        );
        let binds = vec![
            Bind::Text(framework.to_owned()),
            Bind::Text(control.to_owned()),
            Bind::Int(from.timestamp_micros()),
            Bind::Int(to.timestamp_micros()),
        ];
        evidence_list(&self.records(&sql, binds).await?)
    }

    async fn plan(&self, id: &str) -> Result<Option<StoredPlan>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM records WHERE subject = $1 AND kind IN ('plan', 'decision', 'outcome') ORDER BY seq"
        );
        fold_plan(&self.records(&sql, vec![Bind::Text(id.to_owned())]).await?)
    }

    async fn plans(&self, state: Option<PlanState>) -> Result<Vec<StoredPlan>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM records WHERE kind IN ('plan', 'decision', 'outcome') AND subject IS NOT NULL ORDER BY seq"
        );
        let records = self.records(&sql, Vec::new()).await?;
        let mut order: Vec<String> = Vec::new();
        let mut by_plan: HashMap<String, Vec<Record>> = HashMap::new();
        for r in records {
            let id = r.index.subject.clone().unwrap_or_default();
            if r.kind == RecordKind::Plan {
                order.push(id.clone());
            }
            by_plan.entry(id).or_default().push(r);
        }
        let mut plans = Vec::new();
        for id in order {
            if let Some(plan) = fold_plan(by_plan.get(&id).map(Vec::as_slice).unwrap_or_default())?
                && state.is_none_or(|s| s == plan.state)
            {
                plans.push(plan);
            }
        }
        Ok(plans)
    }

    async fn verify(&self) -> Result<ChainReport, StoreError> {
        let prunes = self
            .records(&format!("SELECT {COLUMNS} FROM records WHERE kind = 'prune' ORDER BY seq"), Vec::new())
            .await?;
        let head = self.head().await?;
        let mut verifier = ChainVerifier::new(&prunes);
        let mut after = i64::MIN;
        // Page by page: a million records are checked without holding them all.
        loop {
            let sql = format!("SELECT {COLUMNS} FROM records WHERE seq > $1 ORDER BY seq LIMIT $2");
            let page = self.records(&sql, vec![Bind::Int(after), Bind::Int(PAGE)]).await?;
            let Some(last) = page.last().map(|r| r.seq) else { break };
            if !page.iter().all(|r| verifier.push(r)) {
                break;
            }
            after = last;
        }
        let mut report = verifier.finish(&head);
        if report.is_intact() {
            report.problem = self.check_latest_index().await?;
        }
        Ok(report)
    }

    async fn prune(&self, retention: &Retention) -> Result<PruneReport, StoreError> {
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

    #[test]
    fn passwords_do_not_reach_messages() {
        assert_eq!(redact_url("postgres://monitor:s3cret@db:5432/evidence"), "postgres://monitor:***@db:5432/evidence");
        assert_eq!(redact_url("sqlite://evidence.db"), "sqlite://evidence.db");
    }
}
