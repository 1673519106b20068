//! Verification: the chain, page by page, and the derived latest-status
//! index against it.

use std::collections::HashMap;

use compliance_core::StoreError;
use compliance_core::store::{ChainProblem, ChainReport, ChainVerifier, RecordKind};
use sqlx::Row;

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
        // The newest evidence record of each check and resource, seen on the
        // way, for the latest-status index.
        let mut newest: HashMap<(String, String), i64> = HashMap::new();
        // Page by page, a million records are checked without holding them
        // all; the next page is read while this one is checked.
        let mut page = self.records_page(i64::MIN, PAGE).await?;
        while let Some(last) = page.last().map(|r| r.seq) {
            // The read is sent first, so the database works on it while the page is checked.
            let (next, intact) = futures::join!(self.records_page(last, PAGE), async { verifier.push_all(&page) });
            if !intact {
                break;
            }
            for r in page.into_iter().filter(|r| r.kind == RecordKind::Evidence) {
                if let (Some(check), Some(subject)) = (r.index.check_id, r.index.subject) {
                    newest.insert((check, subject), r.seq);
                }
            }
            page = next?;
        }
        let mut report = verifier.finish(&head);
        // Then what the chain does not cover by itself: the database's own
        // integrity, and the tables derived from the chain.
        if report.is_intact() {
            report.problem = self.check_integrity().await?;
        }
        if report.is_intact() {
            report.problem = self.check_latest_index(newest).await?;
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
    /// at the newest evidence record of its check and resource (`newest`,
    /// gathered while walking the chain), and every check and resource must
    /// have a row.
    async fn check_latest_index(
        &self,
        mut newest: HashMap<(String, String), i64>,
    ) -> Result<Option<ChainProblem>, StoreError> {
        let rows = sqlx::query("SELECT check_id, subject, seq FROM latest ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error)?;
        for row in rows {
            let key: (String, String) =
                (row.try_get("check_id").map_err(query_error)?, row.try_get("subject").map_err(query_error)?);
            let indexed: i64 = row.try_get("seq").map_err(query_error)?;
            match newest.remove(&key) {
                Some(n) if n == indexed => {}
                Some(n) => {
                    let detail = format!(
                        "the latest-status index points to record {indexed}, but the newest evidence is record {n}"
                    );
                    return Ok(Some(ChainProblem::Changed { seq: indexed, detail }));
                }
                None => {
                    let detail =
                        format!("the latest-status index points to record {indexed}, which is not an evidence record");
                    return Ok(Some(ChainProblem::Changed { seq: indexed, detail }));
                }
            }
        }
        if let Some(missing) = newest.into_values().min() {
            let detail = format!("record {missing} is missing from the latest-status index");
            return Ok(Some(ChainProblem::Changed { seq: missing, detail }));
        }
        Ok(None)
    }
}
