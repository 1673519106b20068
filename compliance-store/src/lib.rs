#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connect;
mod read;
mod schema;
mod verify;
mod write;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use compliance_core::Evidence;
// The trait and the chain live in compliance-core (its testkit has the in-memory store).
use compliance_core::store::{ChainHead, NewRecord, PruneReport, Record, RecordKind, fold_plan};
pub use compliance_core::store::{
    ChainReport, EvidenceStore, EvidenceStoreExt, PlanState, Retention, StoreError, StoredPlan, StoredRun,
};
use sqlx::AnyPool;
use tracing::debug;

pub use connect::{Backend, OpenMode, redact_url};
use read::{Bind, evidence_list};
use schema::COLUMNS;
pub use schema::SCHEMA_VERSION;

/// An evidence store in SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

fn query_error(e: sqlx::Error) -> StoreError {
    StoreError::query(e)
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

    async fn append_if_head(
        &self,
        expected: &ChainHead,
        records: Vec<NewRecord>,
    ) -> Result<Option<Vec<Record>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error)?;
        // The head is locked before it is compared: nothing can be appended in between.
        if Self::lock_head(&mut tx).await? != *expected {
            tx.rollback().await.map_err(query_error)?;
            return Ok(None);
        }
        let sealed = self.append_in(&mut tx, records).await?;
        tx.commit().await.map_err(query_error)?;
        Ok(Some(sealed))
    }

    async fn head(&self) -> Result<ChainHead, StoreError> {
        SqlStore::head(self).await
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

    async fn records_after(&self, after_seq: i64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.records_page(after_seq, limit).await
    }

    async fn verify(&self) -> Result<ChainReport, StoreError> {
        self.verify_in_pages().await
    }

    async fn prune(&self, retention: &Retention) -> Result<PruneReport, StoreError> {
        self.prune_runs(retention).await
    }
}
