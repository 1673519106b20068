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
        // Then what the chain does not cover by itself: the database's own
        // integrity, and the tables derived from the chain.
        if report.is_intact() {
            report.problem = self.check_integrity().await?;
        }
        if report.is_intact() {
            report.problem = self.check_latest_index().await?;
        }
        if report.is_intact() {
            report.problem = self.check_run_controls().await?;
        }
        Ok(report)
    }

    /// SQLite's own check of its pages and indexes (`PRAGMA quick_check`:
    /// every page and index entry, without comparing index contents, which
    /// the next checks do for our indexes).
    async fn check_integrity(&self) -> Result<Option<ChainProblem>, StoreError> {
        if self.backend != crate::Backend::Sqlite {
            return Ok(None);
        }
        let rows = sqlx::query("PRAGMA quick_check(10)").fetch_all(&self.pool).await.map_err(query_error)?;
        let found: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
        Ok((found != ["ok"])
            .then(|| ChainProblem::Damaged { seq: 0, detail: format!("SQLite integrity check: {}", found.join("; ")) }))
    }

    /// `run_controls` (which control each check supported in each run, for
    /// `evidence control`) is derived from the chain's `controls` records:
    /// every row must come from one, and every mapping in one must have its
    /// row.
    async fn check_run_controls(&self) -> Result<Option<ChainProblem>, StoreError> {
        use std::collections::BTreeMap;
        let records = self
            .records(&format!("SELECT {COLUMNS} FROM records WHERE kind = 'controls' ORDER BY seq"), Vec::new())
            .await?;
        // (run, framework, control, check) -> (count expected, the controls record).
        let mut expected: BTreeMap<(String, String, String, String), (i64, i64)> = BTreeMap::new();
        for r in &records {
            let body: serde_json::Value = serde_json::from_str(&r.body).map_err(|e| StoreError::corrupt(r.seq, e))?;
            let run = r.index.run_id.clone().unwrap_or_default();
            for (framework, controls) in body["frameworks"].as_object().into_iter().flatten() {
                for (control, checks) in controls.as_object().into_iter().flatten() {
                    for check in checks.as_array().into_iter().flatten().filter_map(|c| c.as_str()) {
                        let key = (run.clone(), framework.clone(), control.clone(), check.to_owned());
                        expected.entry(key).or_insert((0, r.seq)).0 += 1;
                    }
                }
            }
        }
        let rows = sqlx::query("SELECT run_id, framework, control, check_id FROM run_controls")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error)?;
        for row in rows {
            let key: (String, String, String, String) = (
                row.try_get("run_id").map_err(query_error)?,
                row.try_get("framework").map_err(query_error)?,
                row.try_get("control").map_err(query_error)?,
                row.try_get("check_id").map_err(query_error)?,
            );
            match expected.get_mut(&key) {
                Some((count, _)) if *count > 0 => *count -= 1,
                _ => {
                    let (run, framework, control, check) = key;
                    return Ok(Some(ChainProblem::Damaged {
                        seq: 0,
                        detail: format!(
                            "the control mapping has a row no controls record holds: run {run}, {framework} {control}, check {check}"
                        ),
                    }));
                }
            }
        }
        if let Some(((run, framework, control, check), (_, seq))) = expected.into_iter().find(|(_, (n, _))| *n > 0) {
            return Ok(Some(ChainProblem::Damaged {
                seq,
                detail: format!("the control mapping lost a row: run {run}, {framework} {control}, check {check}"),
            }));
        }
        Ok(None)
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
