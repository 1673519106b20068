//! Engine behaviour: failure isolation, timeouts, cancellation, the
//! concurrency bound, waivers, approval, progress; and the testkit's own
//! conformance.

#![allow(clippy::panic)] // a collector that panics is what some tests are about

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::testkit::{
    InMemoryCollector, InMemoryRemediator, World, check_collector, check_remediator, sample_check,
};
use compliance_core::{
    Approval, Approver, CancellationToken, Check, Collection, Collector, CollectorOutcome, Engine, EngineConfig, Error,
    Evidence, GapKind, Mode, ProgressEvent, RejectAll, RemediationPlan, ResourceRef, Risk, RunOptions, Scope, Status,
    Waiver,
};
use mockall::mock;

type TestResult = Result<(), Box<dyn std::error::Error>>;

mock! {
    Coll {}
    #[async_trait]
    impl Collector for Coll {
        fn name(&self) -> &str;
        fn checks(&self) -> Vec<Check>;
        async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection>;
    }
}

// The same trait mocked through the signature async-trait generates, so that
// an expectation can return a future that really waits (for timeouts,
// cancellation and the concurrency bound).
mock! {
    SlowColl {}
    impl Collector for SlowColl {
        fn name(&self) -> &str;
        fn checks(&self) -> Vec<Check>;
        fn collect<'life0, 'life1, 'async_trait>(&'life0 self, scope: &'life1 Scope)
            -> std::pin::Pin<Box<dyn std::future::Future<Output = compliance_core::Result<Collection>> + Send + 'async_trait>>
        where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
    }
}

/// A mocked collector whose collection sleeps for `delay`, tracking how many
/// run at once in `running`/`peak`.
fn slow_mock(
    name: &str,
    delay: Duration,
    calls: std::ops::RangeInclusive<usize>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
) -> MockSlowColl {
    let mut m = MockSlowColl::new();
    m.expect_name().return_const(name.to_owned());
    m.expect_checks().returning(Vec::new);
    m.expect_collect().times(calls).returning(move |_| {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        Box::pin(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(Collection::default())
        })
    });
    m
}

mock! {
    Appr {}
    #[async_trait]
    impl Approver for Appr {
        async fn decide(&self, plan: &RemediationPlan) -> Approval;
    }
}

fn mock_collector(name: &'static str, result: fn() -> compliance_core::Result<Collection>) -> MockColl {
    let mut m = MockColl::new();
    m.expect_name().return_const(name.to_owned());
    m.expect_checks().returning(|| vec![sample_check("mock.check.one").unwrap_or_else(|e| panic!("{e}"))]);
    m.expect_collect().times(1).returning(move |_| result());
    m
}

fn good_collection() -> compliance_core::Result<Collection> {
    let check = sample_check("mock.check.one")?;
    Ok(vec![Evidence::new(&check, ResourceRef::new("mock", "Thing", "t1", "t1"), Status::Pass, "fine")].into())
}

/// `n` mocked slow collectors, each expecting `calls` collections; returns
/// them and the peak number that ran at once.
fn sleepers(
    n: usize,
    delay: Duration,
    calls: std::ops::RangeInclusive<usize>,
) -> (Vec<Arc<dyn Collector>>, Arc<AtomicUsize>) {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let list = (0..n)
        .map(|i| {
            let mock =
                slow_mock(&format!("sleeper-{i}"), delay, calls.clone(), Arc::clone(&running), Arc::clone(&peak));
            Arc::new(mock) as Arc<dyn Collector>
        })
        .collect();
    (list, peak)
}

#[tokio::test]
async fn failing_and_panicking_collectors_become_gaps_and_the_rest_completes() -> TestResult {
    let engine = Engine::new()
        .with_collector(Arc::new(mock_collector("ok-before", good_collection)))
        .with_collector(Arc::new(mock_collector("fails", || Err(Error::collect("fails", "credentials expired")))))
        .with_collector(Arc::new(mock_collector("panics", || panic!("index out of bounds"))))
        .with_collector(Arc::new(mock_collector("ok-after", good_collection)));
    let run = engine.run(&Scope::all()).await;

    assert_eq!(run.evidence.len(), 2, "both healthy collectors delivered");
    let collectors: Vec<&str> = run.evidence.iter().map(|e| &*e.collector).collect();
    assert_eq!(collectors, ["ok-before", "ok-after"], "evidence in registration order, stamped with its collector");
    assert_eq!(run.gaps.len(), 2);
    let failed = run.gaps.iter().find(|g| g.collector == "fails").ok_or("no gap for fails")?;
    assert_eq!(failed.kind, GapKind::Failed);
    assert!(failed.reason.contains("credentials expired"), "{}", failed.reason);
    let panicked = run.gaps.iter().find(|g| g.collector == "panics").ok_or("no gap for panics")?;
    assert_eq!(panicked.kind, GapKind::Panicked);
    assert!(panicked.reason.contains("index out of bounds"), "{}", panicked.reason);
    let outcomes: Vec<CollectorOutcome> = run.timings.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            CollectorOutcome::Completed,
            CollectorOutcome::Failed,
            CollectorOutcome::Panicked,
            CollectorOutcome::Completed
        ]
    );
    assert!(run.finished_at >= run.started_at);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_collector_past_its_timeout_becomes_a_gap() -> TestResult {
    let (slow, _) = sleepers(1, Duration::from_secs(3600), 1..=1);
    let config = EngineConfig::default().with_collector_timeout(Duration::from_secs(5));
    let engine = Engine::new()
        .with_config(config)
        .with_collector(Arc::clone(&slow[0]))
        .with_collector(Arc::new(mock_collector("quick", good_collection)));
    let started = tokio::time::Instant::now();
    let run = engine.run(&Scope::all()).await;
    assert!(started.elapsed() < Duration::from_secs(10), "the run did not wait for the slow collector");
    assert_eq!(run.evidence.len(), 1);
    assert_eq!(run.gaps.len(), 1);
    assert_eq!(run.gaps[0].kind, GapKind::TimedOut);
    assert!(run.gaps[0].reason.contains("timed out after 5s"), "{}", run.gaps[0].reason);
    assert_eq!(run.timings[0].outcome, CollectorOutcome::TimedOut);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_bound_holds() -> TestResult {
    for bound in [1, 2, 3] {
        let (list, peak) = sleepers(7, Duration::from_secs(1), 1..=1);
        let mut engine = Engine::new().with_config(EngineConfig::default().with_concurrency(bound));
        for c in list {
            engine = engine.with_collector(c);
        }
        let started = tokio::time::Instant::now();
        let run = engine.run(&Scope::all()).await;
        assert!(run.gaps.is_empty());
        assert_eq!(peak.load(Ordering::SeqCst), bound, "peak concurrency with bound {bound}");
        // 7 one-second collectors in waves of `bound`.
        let waves = 7_u64.div_ceil(bound as u64);
        assert_eq!(started.elapsed().as_secs(), waves, "bound {bound}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn cancellation_turns_running_and_waiting_collectors_into_gaps() -> TestResult {
    // With one slot, only the first starts; the two waiting are never called.
    let (list, peak) = sleepers(3, Duration::from_secs(60), 0..=1);
    let mut engine = Engine::new().with_config(EngineConfig::default().with_concurrency(1));
    for c in list {
        engine = engine.with_collector(c);
    }
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let run = engine.run_with(&Scope::all(), RunOptions::default().with_cancel(cancel)).await;
    assert_eq!(run.gaps.len(), 3);
    assert!(run.gaps.iter().all(|g| g.kind == GapKind::Cancelled), "{:?}", run.gaps);
    assert!(run.timings.iter().all(|t| t.outcome == CollectorOutcome::Cancelled));
    assert_eq!(peak.load(Ordering::SeqCst), 1, "exactly one collector had started");
    Ok(())
}

#[tokio::test]
async fn progress_events_follow_the_run() -> TestResult {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::new()
        .with_collector(Arc::new(mock_collector("ok", good_collection)))
        .with_collector(Arc::new(mock_collector("fails", || Err(Error::collect("fails", "x")))));
    let run = engine.run_with(&Scope::all(), RunOptions::default().with_progress(tx)).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(matches!(events.first(), Some(ProgressEvent::RunStarted { collectors: 2, run_id }) if *run_id == run.id));
    assert!(matches!(events.last(), Some(ProgressEvent::RunFinished { evidence: 1, gaps: 1, .. })));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProgressEvent::CollectorFinished { collector, evidence: 1, .. } if collector == "ok"))
    );
    assert!(
        events.iter().any(|e| matches!(e, ProgressEvent::CollectorFailed { collector, .. } if collector == "fails"))
    );
    Ok(())
}

#[tokio::test]
async fn waived_failures_keep_status_fail_and_expired_waivers_do_not_apply() -> TestResult {
    let world = World::default();
    world.set("prod/web", "demo.flag.on", false);
    world.set("prod/db", "demo.flag.on", false);
    world.set("dev/web", "demo.flag.on", false);
    let now = Utc::now();
    let engine = Engine::new()
        .with_collector(Arc::new(InMemoryCollector::new("mem", vec![sample_check("demo.flag.on")?], world)))
        .with_waivers([
            Waiver::new(
                "W-ACTIVE",
                "demo.flag.*",
                "prod/*",
                "vendor fix due",
                "alice",
                now + chrono::Duration::days(30),
            ),
            Waiver::new("W-EXPIRED", "demo.*", "dev/*", "was temporary", "bob", now - chrono::Duration::days(1)),
        ]);
    let run = engine.run(&Scope::all()).await;
    assert_eq!(run.evidence.len(), 3);
    assert!(run.evidence.iter().all(|e| e.status == Status::Fail), "waivers never change a status");
    for e in &run.evidence {
        let waiver = e.waiver.as_ref().map(|w| w.id.as_str());
        if e.resource.id.starts_with("prod/") {
            assert_eq!(waiver, Some("W-ACTIVE"), "{}", e.resource.id);
        } else {
            assert_eq!(waiver, None, "expired waiver must not apply to {}", e.resource.id);
        }
    }
    assert_eq!(run.expired_waivers.len(), 1);
    assert_eq!(run.expired_waivers[0].waiver.id, "W-EXPIRED");
    assert_eq!(run.expired_waivers[0].failures_no_longer_waived, 1);
    Ok(())
}

fn remediation_setup(risk: Risk) -> Result<(Engine, World), Error> {
    let world = World::default();
    world.set("bucket-1", "demo.flag.on", false);
    let check = sample_check("demo.flag.on")?;
    let engine = Engine::new()
        .with_collector(Arc::new(InMemoryCollector::new("mem", vec![check.clone()], world.clone())))
        .with_remediator(Arc::new(InMemoryRemediator::new("mem-fix", vec![check], risk, world.clone())));
    Ok((engine, world))
}

#[tokio::test]
async fn high_risk_plans_need_approval_and_the_decision_is_recorded() -> TestResult {
    let (engine, world) = remediation_setup(Risk::High)?;
    let run = engine.run(&Scope::all()).await;
    let plan = engine.plan(&run.evidence[0]).await?.ok_or("no plan")?;

    // Dry run needs no approval and changes nothing.
    let mut never = MockAppr::new();
    never.expect_decide().never();
    let dry = engine.apply(&plan, Mode::DryRun, &never).await?;
    assert!(!dry.applied);
    assert_eq!(world.get("bucket-1", "demo.flag.on"), Some(Some(false)));

    // Rejected: nothing applied.
    let rejected = engine.apply(&plan, Mode::Apply, &RejectAll).await;
    assert!(matches!(rejected, Err(Error::NotApproved { .. })), "{rejected:?}");
    assert_eq!(world.get("bucket-1", "demo.flag.on"), Some(Some(false)));

    // Approved once: applied, verified, and the approval is recorded.
    let mut approver = MockAppr::new();
    approver.expect_decide().times(1).returning(|_| Approval::new(true, "carol", "ticket SEC-42"));
    let outcome = engine.apply(&plan, Mode::Apply, &approver).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    assert_eq!(outcome.approval.as_ref().map(|a| a.by.as_str()), Some("carol"));
    assert_eq!(world.get("bucket-1", "demo.flag.on"), Some(Some(true)));
    Ok(())
}

#[tokio::test]
async fn low_risk_plans_apply_without_asking() -> TestResult {
    let (engine, world) = remediation_setup(Risk::Low)?;
    let run = engine.run(&Scope::all()).await;
    let plan = engine.plan(&run.evidence[0]).await?.ok_or("no plan")?;
    let mut never = MockAppr::new();
    never.expect_decide().never();
    let outcome = engine.apply(&plan, Mode::Apply, &never).await?;
    assert!(outcome.applied && outcome.approval.is_none());
    assert_eq!(world.get("bucket-1", "demo.flag.on"), Some(Some(true)));
    Ok(())
}

#[tokio::test]
async fn testkit_implementations_pass_the_conformance_suite() -> TestResult {
    let world = World::default();
    for i in 0..5 {
        world.set(&format!("r{i}"), "demo.flag.on", i % 2 == 0);
    }
    world.set_unreadable("r9", "demo.flag.on");
    let check = sample_check("demo.flag.on")?;
    let collector = InMemoryCollector::new("mem", vec![check.clone()], world.clone());
    let collection = check_collector(&collector, &Scope::all()).await?;
    assert_eq!(collection.evidence.len(), 6);
    assert_eq!(collection.evidence.iter().filter(|e| e.status == Status::Error).count(), 1);
    let remediator = InMemoryRemediator::new("fix", vec![check], Risk::Low, world);
    assert_eq!(check_remediator(&remediator, &collector, &Scope::all(), 10).await?, 2);
    Ok(())
}

#[tokio::test]
async fn the_conformance_suite_catches_a_bad_collector() -> TestResult {
    let mut bad = MockColl::new();
    bad.expect_name().return_const("bad".to_owned());
    bad.expect_checks().returning(|| vec![sample_check("mock.check.one").unwrap_or_else(|e| panic!("{e}"))]);
    bad.expect_collect().returning(|_| {
        let undeclared = sample_check("mock.check.undeclared")?;
        Ok(vec![Evidence::new(&undeclared, ResourceRef::new("mock", "Thing", "t", "t"), Status::Pass, "ok")].into())
    });
    let err = check_collector(&bad, &Scope::all()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("evidence names a declared check"), "{err}");
    Ok(())
}
