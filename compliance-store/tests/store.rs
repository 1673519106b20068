//! Both backends on real servers: a SQLite file in a temp dir and a
//! PostgreSQL database (the server `scripts/test` starts; set
//! `COMPLIANCE_TEST_POSTGRES_URL` to use another). Every test runs once per
//! backend; the PostgreSQL ones are ignored by plain `cargo test`. The conformance suite,
//! tampering with the database directly, concurrent writers, reopening.

use compliance_core::store::{ChainProblem, EvidenceStore, Retention};
use compliance_core::testkit::{append_sample_runs, check_store};
use compliance_store::{Backend, SqlStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database on the PostgreSQL server `scripts/test` starts (or at
/// `COMPLIANCE_TEST_POSTGRES_URL`).
async fn postgres_db() -> Result<String, Box<dyn std::error::Error>> {
    let admin = std::env::var("COMPLIANCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned());
    sqlx::any::install_default_drivers();
    let name = format!("compliance_test_{}", uuid_like());
    let pool = sqlx::AnyPool::connect(&admin)
        .await
        .map_err(|e| format!("no PostgreSQL server at {admin} ({e}): scripts/test starts one"))?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await?;
    pool.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
    Ok(format!("{base}/{name}"))
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}_{nanos}", std::process::id())
}

/// A new, empty store on `db`, and its URL.
async fn store(db: Db, dir: &tempfile::TempDir) -> Result<(String, SqlStore), Box<dyn std::error::Error>> {
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join(format!("evidence-{}.db", uuid_like())).display()),
        Db::Postgres => postgres_db().await?,
    };
    let store = SqlStore::open(&url).await?;
    Ok((url, store))
}

/// One test per backend: `NAME::sqlite`, and `NAME::postgres`, which needs
/// the server and is ignored by plain `cargo test` (scripts/test runs it).
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() -> super::TestResult {
                super::$name(super::Db::Sqlite).await
            }

            #[tokio::test]
            #[ignore = "needs PostgreSQL: scripts/test starts one on 127.0.0.1:55432"]
            async fn postgres() -> super::TestResult {
                super::$name(super::Db::Postgres).await
            }
        }
    )*};
}

on_each_backend!(
    the_conformance_suite_passes,
    tampering_with_the_database_is_caught,
    concurrent_writers_keep_one_chain,
    reopening_keeps_history_and_migrations_run_once,
    pruning_by_runs_keeps_the_chain_verifiable,
    racing_decisions_on_one_plan_record_exactly_one,
);

async fn with_runs(store: &SqlStore, runs: usize) -> TestResult {
    Ok(append_sample_runs(store, runs).await?)
}

async fn sql(store: &SqlStore, statement: &str) -> TestResult {
    sqlx::query(statement).execute(store.pool()).await?;
    Ok(())
}

async fn the_conformance_suite_passes(db: Db) -> TestResult {
    let dir = tempfile::tempdir()?;
    let (url, store) = store(db, &dir).await?;
    check_store(&store).await.map_err(|e| format!("{url}: {e}"))?;
    Ok(())
}

async fn tampering_with_the_database_is_caught(db: Db) -> TestResult {
    let dir = tempfile::tempdir()?;
    type Expect = fn(&Option<ChainProblem>) -> bool;
    let cases: [(&str, &[&str], Expect); 9] = [
        (
            "a control mapping row written without a controls record",
            &[
                "INSERT INTO run_controls (run_id, framework, control, check_id) SELECT run_id, 'soc2', 'CC6.1', 'demo.forged' FROM run_controls LIMIT 1",
            ],
            |p| matches!(p, Some(ChainProblem::Damaged { detail, .. }) if detail.contains("demo.forged")),
        ),
        (
            "the control mapping emptied (evidence control would answer nothing)",
            &["DELETE FROM run_controls"],
            |p| matches!(p, Some(ChainProblem::Damaged { detail, seq }) if detail.contains("lost a row") && *seq > 0),
        ),
        (
            "one mapping row changed",
            &["UPDATE run_controls SET control = 'CC9.9' WHERE check_id = (SELECT MIN(check_id) FROM run_controls)"],
            |p| matches!(p, Some(ChainProblem::Damaged { .. })),
        ),
        (
            "the latest-status index pointed at an older record",
            &["UPDATE latest SET seq = seq - 5 WHERE subject = 'db-0'"],
            |p| matches!(p, Some(ChainProblem::Changed { detail, .. }) if detail.contains("latest-status index")),
        ),
        (
            "a changed evidence body",
            &["UPDATE records SET body = REPLACE(body, '\"pass\"', '\"fail\"') WHERE seq = 3"],
            |p| matches!(p, Some(ChainProblem::Changed { seq: 3, .. })),
        ),
        ("a changed status column", &["UPDATE records SET status = 'fail' WHERE seq = 3"], |p| {
            matches!(p, Some(ChainProblem::Changed { seq: 3, .. }))
        }),
        ("a deleted record", &["DELETE FROM records WHERE seq = 6"], |p| {
            matches!(p, Some(ChainProblem::Removed { seq: 6, .. }))
        }),
        (
            "two records swapped",
            &[
                "UPDATE records SET seq = -1 WHERE seq = 3",
                "UPDATE records SET seq = 3 WHERE seq = 4",
                "UPDATE records SET seq = 4 WHERE seq = -1",
            ],
            |p| matches!(p, Some(ChainProblem::Reordered { seq: 3, .. })),
        ),
        (
            "the last run's tail deleted, head rewound",
            &[
                "DELETE FROM records WHERE seq > 9",
                "UPDATE chain_head SET seq = 9, hash = (SELECT hash FROM records WHERE seq = 9) WHERE id = 1",
            ],
            |p| matches!(p, Some(ChainProblem::Removed { .. })),
        ),
    ];
    for (what, statements, expected) in cases {
        let (url, store) = store(db, &dir).await?;
        with_runs(&store, 3).await?;
        assert!(store.verify().await?.is_intact(), "{url}: intact before tampering");
        for statement in statements {
            sql(&store, statement).await?;
        }
        let report = store.verify().await?;
        assert!(expected(&report.problem), "{url}: {what}: {:?}", report.problem);
    }
    Ok(())
}

async fn concurrent_writers_keep_one_chain(db: Db) -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (url, first) = store(db, &dir).await?;
        // A second, independent connection pool on the same database: another monitor.
        let second = SqlStore::open(&url).await?;
        let (a, b) = tokio::join!(with_runs(&first, 10), with_runs(&second, 10));
        a.map_err(|e| format!("{url}: {e}"))?;
        b.map_err(|e| format!("{url}: {e}"))?;
        let report = first.verify().await?;
        assert!(report.is_intact(), "{url}: {:?}", report.problem);
        assert_eq!(report.runs, 20, "{url}");
        assert_eq!(report.records, 20 * 5, "{url}");
    }
    Ok(())
}

async fn reopening_keeps_history_and_migrations_run_once(db: Db) -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (url, store) = store(db, &dir).await?;
        with_runs(&store, 2).await?;
        store.pool().close().await;
        let reopened = SqlStore::open(&url).await?;
        assert_eq!(reopened.runs(None, None).await?.len(), 2, "{url}");
        let versions = sqlx::query("SELECT version FROM schema_migrations").fetch_all(reopened.pool()).await?;
        assert_eq!(versions.len(), 1, "{url}");
        assert_eq!(reopened.backend(), Backend::of_url(&url).ok_or("backend")?);
        with_runs(&reopened, 1).await?;
        assert!(reopened.verify().await?.is_intact());
    }
    Ok(())
}

async fn pruning_by_runs_keeps_the_chain_verifiable(db: Db) -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (url, store) = store(db, &dir).await?;
        with_runs(&store, 6).await?;
        let pruned = store.prune(&Retention::runs(2)).await?;
        assert_eq!((pruned.runs, pruned.records), (4, 20), "{url}");
        assert_eq!(store.runs(None, None).await?.len(), 2);
        assert_eq!(store.latest().await?.len(), 3, "{url}: the kept runs' latest evidence");
        let report = store.verify().await?;
        assert!(report.is_intact(), "{url}: {:?}", report.problem);
        // Days: nothing here is older than a day.
        assert_eq!(store.prune(&Retention::days(1)).await?.runs, 0);
        // A tampered prune note is caught like any record.
        sql(&store, "UPDATE records SET body = REPLACE(body, '\"runs\":4', '\"runs\":0') WHERE kind = 'prune'").await?;
        assert!(!store.verify().await?.is_intact(), "{url}");
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    let err = SqlStore::open("mysql://localhost/db").await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("use sqlite://PATH or postgres://"), "{err}");
    let unavailable = SqlStore::open("postgres://monitor:s3cret@127.0.0.1:1/evidence").await.err();
    // The driver's error is kept as the source, and its text ends the message.
    let source = unavailable.as_ref().and_then(std::error::Error::source).map(|s| s.to_string()).unwrap_or_default();
    let err = unavailable.map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("store unavailable: postgres://monitor:***@127.0.0.1:1/evidence"), "{err}");
    assert!(!err.contains("s3cret"));
    assert!(!source.is_empty() && err.ends_with(&source), "{err} / {source}");
}

async fn racing_decisions_on_one_plan_record_exactly_one(db: Db) -> TestResult {
    use compliance_core::EvidenceStoreExt;
    use compliance_core::store::PlanState;
    let dir = tempfile::tempdir()?;
    let (url, store) = store(db, &dir).await?;
    let store = std::sync::Arc::new(store);
    with_runs(&store, 1).await?;
    for round in 0..5 {
        let check = compliance_core::testkit::sample_check("demo.db.backups")?;
        let resource = compliance_core::ResourceRef::new("demo", "Database", format!("db-{round}"), "db");
        let failing = compliance_core::Evidence::new(&check, resource, compliance_core::Status::Fail, "off");
        let plan = compliance_core::RemediationPlan::new(
            "demo",
            &failing,
            "turn backups on",
            Vec::new(),
            compliance_core::Risk::High,
            serde_json::Value::Null,
        );
        store.save_plan(&plan, None).await?;
        // Approvals and rejections at once, while a monitor keeps appending.
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (store, id) = (std::sync::Arc::clone(&store), plan.id.clone());
            tasks.push(tokio::spawn(async move {
                store.decide(&id, i % 2 == 0, &format!("approver-{i}"), "race").await.is_ok()
            }));
        }
        let writer = std::sync::Arc::clone(&store);
        let monitor =
            tokio::spawn(async move { append_sample_runs(writer.as_ref(), 1).await.map_err(|e| e.to_string()) });
        let mut recorded = 0;
        for task in tasks {
            if task.await? {
                recorded += 1;
            }
        }
        monitor.await??;
        assert_eq!(recorded, 1, "{url}: round {round}: exactly one decision is recorded");
        let stored = store.plan(&plan.id).await?.ok_or("no plan")?;
        assert!(matches!(stored.state, PlanState::Approved | PlanState::Rejected), "{:?}", stored.state);
    }
    assert!(store.verify().await?.is_intact());
    Ok(())
}
