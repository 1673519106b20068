//! Remediation of live Deployments over HTTP (dry run, apply, re-verify), the
//! exact request shape through tower-test, and fixed manifest copies.

use compliance_core::testkit::check_remediator;
use compliance_core::{Collector, Engine, Mode, RejectAll, Remediator, Scope, Status};
use compliance_k8s::{ClusterCollector, ClusterConfig, FixDefaults, WorkloadRemediator, fix_manifest, scan_text};
use serde_json::json;

use crate::TestResult;
use compliance_test_support::kube_api::{FakeApi, deployment};

fn unhardened() -> serde_json::Value {
    json!({"securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "web", "image": "web:1", "resources": {"limits": {"memory": "256Mi"}}},
                       {"name": "sidecar", "image": "proxy:2", "securityContext": {"runAsUser": 0}}]})
}

#[tokio::test]
async fn dry_run_changes_nothing_apply_fixes_and_is_verified() -> TestResult {
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", unhardened()));
    let server = api.start().await?;
    let collector = ClusterCollector::new(server.client()?, ClusterConfig::default().with_cluster("test"));
    let remediator = WorkloadRemediator::new(server.client()?);
    let scope =
        Scope::only(["k8s.pod.run_as_non_root", "k8s.container.memory_limit", "k8s.container.privilege_escalation"]);

    let collection = collector.collect(&scope).await?;
    let failing =
        collection.evidence.iter().find(|e| e.check_id.as_str() == "k8s.pod.run_as_non_root").ok_or("no evidence")?;
    assert_eq!(failing.status, Status::Fail);
    let plan = remediator.plan(failing).await?.ok_or("no plan")?;
    // The minimal patch: pod securityContext, and only the container that sets root.
    assert_eq!(
        plan.payload,
        json!({"spec": {"template": {"spec": {
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "fsGroup": 20001},
        "containers": [{"name": "sidecar", "securityContext": {"runAsUser": 10001}}]}}}})
    );
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "spec.template.spec.securityContext.runAsNonRoot",
            "spec.template.spec.securityContext.runAsUser",
            "spec.template.spec.securityContext.fsGroup",
            "spec.template.spec.containers[1].securityContext.runAsUser",
        ]
    );
    assert_eq!(plan.changes[0].before, json!(false));
    assert!(plan.changes[0].operation.starts_with("PATCH apps/v1 deployments shop/web"));

    // Dry run: the server answers with the patched object, stores nothing.
    let dry = remediator.apply(&plan, Mode::DryRun).await?;
    assert!(!dry.applied);
    assert_eq!(dry.record["server_verdict"], "pass");
    let stored = server.api.get("deployments", "shop", "web").ok_or("gone")?;
    assert_eq!(stored["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], false);
    let patches: Vec<_> = server.api.seen().into_iter().filter(|s| s.method == "PATCH").collect();
    assert_eq!(patches[0].query.get("dryRun").map(String::as_str), Some("All"));
    assert_eq!(patches[0].query.get("fieldManager").map(String::as_str), Some("compliance-rs"));
    assert_eq!(patches[0].content_type.as_deref(), Some("application/strategic-merge-patch+json"));

    // High risk: the engine will not apply it without approval.
    let engine = Engine::new().with_remediator(std::sync::Arc::new(remediator.clone()));
    assert!(engine.apply(&plan, Mode::Apply, &RejectAll).await.is_err());
    assert_eq!(
        server.api.get("deployments", "shop", "web").ok_or("gone")?["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        false
    );

    // Apply: patched for real, re-read, re-judged.
    let outcome = remediator.apply(&plan, Mode::Apply).await?;
    assert!(outcome.applied);
    assert_eq!(outcome.verification.as_ref().map(|v| v.status), Some(Status::Pass));
    let stored = server.api.get("deployments", "shop", "web").ok_or("gone")?;
    assert_eq!(stored["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(stored["spec"]["template"]["spec"]["containers"][0]["image"], "web:1", "untouched fields stay");
    assert_eq!(stored["spec"]["template"]["spec"]["containers"][1]["securityContext"]["runAsUser"], 10001);
    Ok(())
}

#[tokio::test]
async fn the_remediator_passes_the_conformance_suite() -> TestResult {
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "a", json!({"containers": [{"name": "a", "image": "a:1"}]})));
    api.add(
        "deployments",
        deployment("shop", "b", json!({"containers": [{"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}]})),
    );
    let server = api.start().await?;
    let collector = ClusterCollector::new(server.client()?, ClusterConfig::default().with_cluster("test"));
    let remediator =
        WorkloadRemediator::new(server.client()?).with_defaults(FixDefaults::default().with_memory_limit("1Gi"));
    for check in [
        "k8s.container.memory_limit",
        "k8s.container.cpu_limit",
        "k8s.container.privilege_escalation",
        "k8s.container.read_only_root_filesystem",
        "k8s.pod.run_as_non_root",
    ] {
        let fixed = check_remediator(&remediator, &collector, &Scope::only([check]), 10).await?;
        assert_eq!(fixed, 2, "{check}");
    }
    let b = server.api.get("deployments", "shop", "b").ok_or("gone")?;
    assert_eq!(b["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]["memory"], "1Gi");
    Ok(())
}

#[tokio::test]
async fn dry_run_request_shape_through_tower_test() -> TestResult {
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let client = kube::Client::new(service, "default");
    let remediator = WorkloadRemediator::new(client);
    let object = deployment("shop", "web", json!({"containers": [{"name": "web", "image": "web:1"}]}));
    let evidence = scan_text(
        &serde_json::to_string(&object)?,
        "live.json",
        &Default::default(),
        &Scope::only(["k8s.container.cpu_limit"]),
    )
    .evidence
    .into_iter()
    .next()
    .ok_or("no evidence")?;
    let mut evidence = evidence;
    let resource = std::sync::Arc::make_mut(&mut evidence.resource);
    resource.namespace = Some("shop".into());
    resource.name = "web".into();
    let server = tokio::spawn(async move {
        let mut shapes = Vec::new();
        for _ in 0..3 {
            let Some((request, send)) = handle.next_request().await else { break };
            shapes.push((
                request.method().to_string(),
                request.uri().to_string(),
                request.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned()),
            ));
            let body = serde_json::to_vec(&object).unwrap_or_default();
            match http::Response::builder().status(200).body(kube::client::Body::from(body)) {
                Ok(response) => send.send_response(response),
                Err(_) => break,
            }
        }
        shapes
    });
    let plan = remediator.plan(&evidence).await?.ok_or("no plan")?;
    let outcome = remediator.apply(&plan, Mode::DryRun).await?;
    assert!(!outcome.applied);
    let shapes = server.await?;
    assert_eq!(shapes[0].0, "GET");
    assert_eq!(shapes[0].1, "/apis/apps/v1/namespaces/shop/deployments/web");
    assert_eq!(shapes[2].0, "PATCH");
    assert_eq!(shapes[2].1, "/apis/apps/v1/namespaces/shop/deployments/web?&dryRun=All&fieldManager=compliance-rs");
    assert_eq!(shapes[2].2.as_deref(), Some("application/strategic-merge-patch+json"));
    Ok(())
}

#[test]
fn manifests_are_fixed_into_a_new_text_and_re_verified() -> TestResult {
    let text = "# payments\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: pay\nspec:\n  template:\n    spec:\n      containers:\n      - name: pay\n        image: pay:3\n      volumes:\n      - name: s\n        secret: {secretName: s, defaultMode: 0400}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: pay}\nspec:\n  ports: [{port: 80}]\n";
    let scope =
        Scope::only(["k8s.pod.run_as_non_root", "k8s.container.memory_limit", "k8s.volume.secret_default_mode"]);
    let fix = fix_manifest(text, "pay.yaml", &scope, &FixDefaults::default())?;
    assert!(fix.still_failing.is_empty(), "{:?}", fix.still_failing);
    assert_eq!(fix.changes.len(), 1);
    assert_eq!(fix.changes[0].0, "pay.yaml#0/Deployment/pay");
    let rescan = scan_text(&fix.text, "fixed.yaml", &Default::default(), &scope);
    assert!(rescan.gaps.is_empty());
    assert_eq!(rescan.evidence.len(), 3);
    assert!(rescan.evidence.iter().all(|e| e.status == Status::Pass), "{:#?}", rescan.evidence);
    assert!(fix.text.contains("kind: Service"), "other documents are kept");
    Ok(())
}

#[test]
fn strings_that_look_like_numbers_stay_strings_in_fixed_copies() -> TestResult {
    // Each of these is a string in the source; a YAML 1.1 reader (Kubernetes)
    // takes the unquoted forms for numbers.
    let values = ["0o17", "1_000", "0X1F", "0b101", "+0x10", "0400", "1e3", "yes", "~", ".inf"];
    let env: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{{name: V{i}, value: \"{v}\"}}")).collect();
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: app:1\n        env: [{}]\n",
        env.join(", ")
    );
    let scope = Scope::only(["k8s.container.memory_limit"]);
    let fix = fix_manifest(&text, "app.yaml", &scope, &FixDefaults::default())?;
    assert_eq!(fix.changes.len(), 1, "the memory limit was added");
    assert!(fix.still_failing.is_empty());
    // Read back the way Kubernetes reads it: every value is still the same string.
    let stream = compliance_core::yaml::parse_documents(&fix.text, "fixed.yaml");
    assert!(stream.error.is_none(), "{:?}", stream.error);
    let env = &stream.documents[0].value["spec"]["template"]["spec"]["containers"][0]["env"];
    for (i, v) in values.iter().enumerate() {
        assert_eq!(env[i]["value"], serde_json::json!(v), "{v} changed in:\n{}", fix.text);
    }
    let rescan = scan_text(&fix.text, "fixed.yaml", &Default::default(), &scope);
    assert!(rescan.evidence.iter().all(|e| e.status == Status::Pass));
    Ok(())
}

#[tokio::test]
async fn evidence_from_another_cluster_is_never_fixed_here() -> TestResult {
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", unhardened()));
    let server = api.start().await?;
    let collector = ClusterCollector::new(server.client()?, ClusterConfig::default().with_cluster("production"));
    let scope = Scope::only(["k8s.pod.run_as_non_root"]);
    let collection = collector.collect(&scope).await?;
    let failing = collection.evidence.first().ok_or("no evidence")?;
    // The kubeconfig now points at staging: the production finding is refused.
    let staging = WorkloadRemediator::new(server.client()?).with_cluster("staging");
    let err = staging.plan(failing).await.err().ok_or("planned across clusters")?;
    assert!(err.to_string().contains("is in cluster production, but this remediator acts on cluster staging"), "{err}");
    // A plan made for production cannot be applied through staging either.
    let production = WorkloadRemediator::new(server.client()?).with_cluster("production");
    let plan = production.plan(failing).await?.ok_or("no plan")?;
    assert!(staging.apply(&plan, Mode::Apply).await.is_err());
    assert!(server.api.seen().iter().all(|s| s.method != "PATCH"), "nothing was sent");
    Ok(())
}
