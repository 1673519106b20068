//! Verification: the chain, page by page, and the derived latest-status
//! index against it.

use compliance_core::StoreError;
use compliance_core::store::{ChainProblem, ChainReport, ChainVerifier};
use sqlx::Row;

use crate::read::Bind;
use crate::schema::COLUMNS;
use crate::{SqlStore, query_error};

/// Records read per page when verifying.
const PAGE: i64 = 10_000;

impl SqlStore {
    /// Walks the whole chain (see [`compliance_core::EvidenceStore::verify`]).
    pub(crate) async fn verify_in_pages(&self) -> Result<ChainReport, StoreError> {
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
