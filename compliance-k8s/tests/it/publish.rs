//! Report objects written into a cluster (the test API server) by
//! server-side apply: stale ones removed, a refusal does not stop the
//! others, and nothing is deleted after an incomplete run or a refusal.

use compliance_k8s::ReportPublisher;
use compliance_test_support::kube_api::FakeApi;
use serde_json::{Value, json};

use crate::TestResult;

fn report(namespace: Option<&str>, name: &str) -> Value {
    let mut metadata = json!({"name": name, "labels": {"app.kubernetes.io/managed-by": "compliance-rs"}});
    let kind = match namespace {
        Some(ns) => {
            metadata["namespace"] = json!(ns);
            "PolicyReport"
        }
        None => "ClusterPolicyReport",
    };
    json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": kind, "metadata": metadata, "results": []})
}

fn publisher(client: kube::Client) -> ReportPublisher {
    ReportPublisher::new(client, "wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport")
}

#[tokio::test]
async fn reports_are_applied_and_stale_ones_removed_only_when_asked() -> TestResult {
    let api = FakeApi::default();
    api.add("policyreports", report(Some("old"), "compliance-rs"));
    let server = api.start().await?;
    let publisher = publisher(server.client()?);
    let objects = [report(Some("shop"), "compliance-rs"), report(None, "compliance-rs")];

    // An incomplete run: applied, nothing deleted.
    let done = publisher.publish(&objects, false).await?;
    assert_eq!((done.applied, done.deleted), (2, 0));
    assert!(server.api.get("policyreports", "old", "compliance-rs").is_some());
    assert!(server.api.get("clusterpolicyreports", "", "compliance-rs").is_some());

    // A complete one: the stale report goes.
    let done = publisher.publish(&objects, true).await?;
    assert_eq!((done.applied, done.deleted), (2, 1));
    assert!(server.api.get("policyreports", "old", "compliance-rs").is_none());
    assert!(server.api.get("policyreports", "shop", "compliance-rs").is_some());
    Ok(())
}

#[tokio::test]
async fn a_refused_report_does_not_stop_the_others_and_nothing_is_deleted() -> TestResult {
    let api = FakeApi::default();
    api.add("policyreports", report(Some("old"), "compliance-rs"));
    api.forbid("closing");
    let server = api.start().await?;
    let objects = [report(Some("closing"), "compliance-rs"), report(Some("shop"), "compliance-rs")];
    let error = publisher(server.client()?).publish(&objects, true).await.err().ok_or("no error")?;
    assert!(error.to_string().contains("apply PolicyReport closing/compliance-rs"), "{error}");
    assert!(server.api.get("policyreports", "shop", "compliance-rs").is_some(), "the next namespace was applied");
    assert!(server.api.get("policyreports", "old", "compliance-rs").is_some(), "nothing deleted after a refusal");
    Ok(())
}

#[tokio::test]
async fn an_object_of_another_kind_is_refused_by_name() -> TestResult {
    let server = FakeApi::default().start().await?;
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}});
    let error = publisher(server.client()?).publish(&[object], true).await.err().ok_or("no error")?;
    assert!(error.to_string().contains("object 0: ConfigMap"), "{error}");
    Ok(())
}
