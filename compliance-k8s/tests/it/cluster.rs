//! The cluster collector over HTTP against the test API server, and against a
//! real cluster when KUBECONFIG points to one.

use compliance_core::testkit::check_collector;
use compliance_core::{Collector, GapKind, Scope, Status};
use compliance_k8s::{ClusterCollector, ClusterConfig};
use serde_json::json;

use crate::TestResult;
use compliance_test_support::kube_api::{FakeApi, deployment, pod};

#[tokio::test]
async fn lists_every_page_of_every_namespace() -> TestResult {
    let api = FakeApi::default();
    for i in 0..7 {
        let ns = if i % 2 == 0 { "shop" } else { "billing" };
        api.add(
            "deployments",
            deployment(ns, &format!("web-{i}"), json!({"containers": [{"name": "web", "image": "web:1"}]})),
        );
    }
    let server = api.start().await?;
    let collector =
        ClusterCollector::new(server.client()?, ClusterConfig::default().with_cluster("test").with_page_size(2));
    let collection = check_collector(&collector, &Scope::only(["k8s.container.memory_limit"])).await?;

    assert_eq!(collection.evidence.len(), 7, "every object of every page");
    assert!(collection.gaps.is_empty(), "{:?}", collection.gaps);
    assert!(collection.evidence.iter().all(|e| e.status == Status::Fail));
    let e = collection.evidence.iter().find(|e| e.resource.name == "web-3").ok_or("web-3 missing")?;
    assert_eq!(e.resource.id, "test/billing/Deployment/web-3");
    assert_eq!(e.resource.namespace.as_deref(), Some("billing"));
    assert_eq!(e.resource.cluster.as_deref(), Some("test"));

    // Four pages of at most two, each asking with limit=2, following `continue`.
    let pages: Vec<_> = server.api.seen().into_iter().filter(|s| s.path == "/apis/apps/v1/deployments").collect();
    assert_eq!(pages.len(), 4);
    assert!(pages.iter().all(|p| p.query.get("limit").map(String::as_str) == Some("2")));
    let tokens: Vec<Option<&str>> = pages.iter().map(|p| p.query.get("continue").map(String::as_str)).collect();
    assert_eq!(tokens, [None, Some("2"), Some("4"), Some("6")]);
    // Every workload kind was listed.
    for path in [
        "/api/v1/pods",
        "/api/v1/replicationcontrollers",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/daemonsets",
        "/apis/apps/v1/replicasets",
        "/apis/batch/v1/jobs",
        "/apis/batch/v1/cronjobs",
    ] {
        assert!(server.api.seen().iter().any(|s| s.path == path), "{path} not listed");
    }
    Ok(())
}

#[tokio::test]
async fn a_forbidden_namespace_is_a_gap_and_the_others_are_judged() -> TestResult {
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", json!({"containers": [{"name": "web"}]})));
    api.add("deployments", deployment("vault", "secret-store", json!({"containers": [{"name": "v"}]})));
    api.forbid("vault");
    let server = api.start().await?;
    let config = ClusterConfig::default().with_cluster("test").with_namespaces(["shop", "vault"]);
    let collection =
        ClusterCollector::new(server.client()?, config).collect(&Scope::only(["k8s.pod.run_as_non_root"])).await?;
    assert_eq!(collection.evidence.len(), 1);
    assert_eq!(collection.evidence[0].resource.name, "web");
    // One gap per kind listed in the forbidden namespace.
    assert_eq!(collection.gaps.len(), 8, "{:?}", collection.gaps);
    assert!(collection.gaps.iter().all(|g| g.kind == GapKind::Denied));
    let g = collection
        .gaps
        .iter()
        .find(|g| g.source.as_deref() == Some("test/vault/deployments"))
        .ok_or("no deployments gap")?;
    assert!(g.reason.contains("forbidden"), "{}", g.reason);
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried() -> TestResult {
    let api = FakeApi::default();
    api.add("pods", pod("shop", "lone", None));
    api.fail_next_lists(2);
    let server = api.start().await?;
    let collection = ClusterCollector::new(server.client()?, ClusterConfig::default())
        .collect(&Scope::only(["k8s.container.cpu_limit"]))
        .await?;
    assert!(collection.gaps.is_empty(), "{:?}", collection.gaps);
    assert_eq!(collection.evidence.len(), 1);
    Ok(())
}

#[tokio::test]
async fn throttling_and_slow_answers_are_retried_and_a_persistent_failure_is_a_named_gap() -> TestResult {
    let scope = Scope::only(["k8s.container.cpu_limit"]);
    for (status, delay) in [(429, 0), (503, 300), (500, 0)] {
        let api = FakeApi::default();
        api.add("pods", pod("shop", "lone", None));
        api.fail_next_lists_with(2, status, std::time::Duration::from_millis(delay));
        let server = api.start().await?;
        let collection = ClusterCollector::new(server.client()?, ClusterConfig::default()).collect(&scope).await?;
        assert!(collection.gaps.is_empty(), "{status}: {:?}", collection.gaps);
        assert_eq!(collection.evidence.len(), 1, "{status}: the pod is judged after the retries");
    }
    // Throttled on every call: no evidence is made up, and the gap says why.
    let api = FakeApi::default();
    api.add("pods", pod("shop", "lone", None));
    api.fail_next_lists_with(usize::MAX, 429, std::time::Duration::ZERO);
    let server = api.start().await?;
    let collection = ClusterCollector::new(server.client()?, ClusterConfig::default()).collect(&scope).await;
    match collection {
        Ok(c) => {
            assert!(c.evidence.is_empty(), "nothing judged, nothing passed");
            assert!(c.gaps.iter().any(|g| g.reason.contains("too many requests")), "{:?}", c.gaps);
        }
        Err(e) => assert!(e.to_string().contains("too many requests"), "{e}"),
    }
    Ok(())
}

#[tokio::test]
async fn owned_pods_are_judged_at_their_owner_unless_asked() -> TestResult {
    let api = FakeApi::default();
    api.add("pods", pod("shop", "web-abc12", Some("web-7d9f")));
    api.add("pods", pod("shop", "debug", None));
    let server = api.start().await?;
    let scope = Scope::only(["k8s.container.cpu_limit"]);
    let default = ClusterCollector::new(server.client()?, ClusterConfig::default()).collect(&scope).await?;
    let names: Vec<&str> = default.evidence.iter().map(|e| e.resource.name.as_str()).collect();
    assert_eq!(names, ["debug"]);
    let all =
        ClusterCollector::new(server.client()?, ClusterConfig::default().with_owned(true)).collect(&scope).await?;
    assert_eq!(all.evidence.len(), 2);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_cluster_fails_the_collector() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let result = ClusterCollector::new(client, ClusterConfig::default()).collect(&Scope::all()).await;
    assert!(result.is_err(), "{result:?}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real cluster: set KUBECONFIG (scripts/test runs it then)"]
async fn real_cluster_when_kubeconfig_is_set() -> TestResult {
    let client = kube::Client::try_default().await?;
    let collection = check_collector(
        &ClusterCollector::new(client, ClusterConfig::default().with_cluster("kubeconfig")),
        &Scope::all(),
    )
    .await?;
    eprintln!("real cluster: {} evidence, {} gaps", collection.evidence.len(), collection.gaps.len());
    Ok(())
}

#[tokio::test]
async fn watch_judges_a_changed_workload_within_seconds() -> TestResult {
    use futures::StreamExt;
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", json!({"containers": [{"name": "web", "image": "web:1"}]})));
    let server = api.start().await?;
    let collector = ClusterCollector::new(server.client()?, ClusterConfig::default().with_cluster("test"));
    let mut changes = collector.watch(Scope::only(["k8s.container.privileged"]));
    // Wait until the Deployment watch is open (after its initial list), then change the object.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let poll = async {
        while !server.api.seen().iter().any(|s| s.path.ends_with("/deployments") && s.query.contains_key("watch")) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        () = poll => {}
        _ = changes.next() => return Err("no event expected before the change".into()),
    }
    assert!(std::time::Instant::now() < deadline);
    let changed_at = std::time::Instant::now();
    server.api.update(
        "deployments",
        deployment(
            "shop",
            "web",
            json!({"containers": [{"name": "web", "image": "web:2", "securityContext": {"privileged": true}}]}),
        ),
    );
    let collection =
        tokio::time::timeout(std::time::Duration::from_secs(10), changes.next()).await?.ok_or("stream ended")?;
    assert!(changed_at.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(collection.evidence.len(), 1);
    let e = &collection.evidence[0];
    assert_eq!((e.check_id.as_str(), e.status), ("k8s.container.privileged", compliance_core::Status::Fail));
    assert_eq!(e.resource.id, "test/shop/Deployment/web", "the same id as the scan's");
    Ok(())
}

#[cfg(feature = "rego")]
#[tokio::test]
async fn rego_policies_judge_live_objects_too() -> TestResult {
    let policy = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/soc2-workloads.rego");
    let (policies, errors) = compliance_k8s::RegoPolicies::load(&[policy], &compliance_k8s::RegoConfig::default());
    assert!(errors.is_empty(), "{errors:?}");
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", json!({"containers": [{"name": "web", "image": "web:1"}]})));
    let server = api.start().await?;
    let mut config = ClusterConfig::default().with_cluster("test");
    config.checks = compliance_k8s::CheckConfig::default().with_policies(policies);
    let collector = ClusterCollector::new(server.client()?, config);
    assert!(collector.checks().iter().any(|c| c.id.as_str() == "rego.example.soc2_workloads"));
    let collection = collector.collect(&Scope::only(["rego.*"])).await?;
    assert_eq!(collection.evidence.len(), 1, "{:?}", collection.evidence);
    let e = &collection.evidence[0];
    assert_eq!(e.status, Status::Fail);
    assert!(e.message.starts_with("labels missing"), "{}", e.message);
    assert_eq!(e.resource.id, "test/shop/Deployment/web");
    Ok(())
}
