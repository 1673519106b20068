//! Kubernetes policy reports (`wgpolicyk8s.io/v1alpha2` and
//! `openreports.io/v1alpha1`), validated against the upstream CRDs' OpenAPI
//! schemas (kept unchanged in `tests/data/crds`, sources in SOURCES.md).
//!
//! The schemas are made strict before use: every object that does not
//! declare `additionalProperties` or `x-kubernetes-preserve-unknown-fields`
//! refuses unknown fields, because the API server would silently prune them.

mod support;

use std::path::PathBuf;

use compliance_core::testkit::sample_check;
use compliance_core::{Evidence, Status};
use compliance_report::{Format, PolicyReportApi, RESULTS_PER_REPORT, policy_reports};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The CRD's schema of `version`, made strict.
fn crd_schema(file: &str, version: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/crds").join(file);
    let text = std::fs::read_to_string(&path)?;
    let stream = compliance_core::yaml::parse_documents(&text, file);
    let crd = stream.documents.into_iter().next().ok_or("empty CRD file")?.value;
    let versions = crd["spec"]["versions"].as_array().ok_or("no versions")?;
    let v = versions.iter().find(|v| v["name"] == version).ok_or("version not in the CRD")?;
    let mut schema = v["schema"]["openAPIV3Schema"].clone();
    strict(&mut schema);
    Ok(schema)
}

fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let open =
                map.contains_key("additionalProperties") || map.contains_key("x-kubernetes-preserve-unknown-fields");
            if map.contains_key("properties") && !open {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            // `metadata` is the API server's ObjectMeta, which the CRD leaves open.
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

fn errors(schema: &Value, object: &Value) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let validator = jsonschema::validator_for(schema)?;
    Ok(validator.iter_errors(object).map(|e| format!("{}: {e}", e.instance_path())).collect())
}

const APIS: [(PolicyReportApi, &str, &str, &str); 2] = [
    (
        PolicyReportApi::WgPolicy,
        "wgpolicyk8s.io_policyreports.yaml",
        "wgpolicyk8s.io_clusterpolicyreports.yaml",
        "v1alpha2",
    ),
    (PolicyReportApi::OpenReports, "openreports.io_reports.yaml", "openreports.io_clusterreports.yaml", "v1alpha1"),
];

#[tokio::test]
async fn every_report_object_follows_its_crd_schema() -> TestResult {
    let report = support::mixed_report().await?;
    for (api, namespaced, cluster, version) in APIS {
        let (namespaced, cluster) = (crd_schema(namespaced, version)?, crd_schema(cluster, version)?);
        let objects = policy_reports(&report, api);
        let kinds: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| (o["kind"].as_str().unwrap_or_default(), o["metadata"]["namespace"].as_str().unwrap_or("")))
            .collect();
        let expected = [(api.kind(), "default"), (api.kind(), "ops"), (api.kind(), "shop"), (api.cluster_kind(), "")];
        assert_eq!(kinds, expected, "one report per namespace, then the cluster-wide one");
        for object in &objects {
            let schema = if object["kind"] == api.cluster_kind() { &cluster } else { &namespaced };
            let found = errors(schema, object)?;
            assert!(found.is_empty(), "{api:?} {}: {found:?}", object["metadata"]["name"]);
            assert_eq!(object["apiVersion"], api.api_version());
        }
        // Every evidence is one result, none left out.
        let results: usize = objects.iter().map(|o| o["results"].as_array().map_or(0, Vec::len)).sum();
        assert_eq!(results, report.evidence.len());

        // A string timestamp, as another scanner writes it, is refused by the schema.
        let mut broken = objects[2].clone();
        broken["results"][0]["timestamp"] = json!("2026-11-28T12:00:00Z");
        assert!(!errors(&namespaced, &broken)?.is_empty(), "the schema refuses a string timestamp");
        // And so is a field the API server would prune.
        let mut broken = objects[2].clone();
        broken["results"][0]["controls"] = json!("CC6.1");
        assert!(!errors(&namespaced, &broken)?.is_empty(), "the strict schema refuses unknown fields");
    }
    Ok(())
}

#[tokio::test]
async fn results_carry_status_severity_time_resource_and_controls() -> TestResult {
    let report = support::mixed_report().await?;
    let objects = policy_reports(&report, PolicyReportApi::WgPolicy);
    let shop = objects.iter().find(|o| o["metadata"]["namespace"] == "shop").ok_or("no shop report")?;
    assert_eq!(shop["summary"], json!({"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 1}));
    let api = &shop["results"][0];
    assert_eq!(api["policy"], "k8s.demo.privileged");
    assert_eq!(api["result"], "fail");
    assert_eq!(api["severity"], "high");
    assert_eq!(api["source"], "compliance-rs");
    assert_eq!(api["timestamp"], json!({"seconds": 1_795_867_200i64, "nanos": 250}));
    assert_eq!(
        api["resources"],
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "namespace": "shop"}])
    );
    assert_eq!(api["properties"]["soc2"], "CC6.1,CC6.8");
    assert_eq!(api["properties"]["pci-dss"], "2.2.5");
    assert_eq!(api["properties"]["file"], "m.yaml:3");
    let waived = &shop["results"][1];
    assert_eq!((&waived["result"], &waived["properties"]["waiver"]), (&json!("skip"), &json!("W-7")));

    let default = objects.iter().find(|o| o["metadata"]["namespace"] == "default").ok_or("no default report")?;
    assert_eq!(default["results"][0]["result"], "error", "a manifest without a namespace lands in default");
    let cluster = objects.last().ok_or("no cluster report")?;
    let alice = &cluster["results"][0];
    assert_eq!(alice["properties"]["resource.id"], "arn:aws:iam::123456789012:user/alice");
    assert_eq!(alice["properties"]["resource.account"], "123456789012");
    assert_eq!(alice["properties"]["soc2"], "CC6.1");
    assert!(alice.get("resources").is_none(), "an AWS resource is not a Kubernetes object reference");
    Ok(())
}

#[tokio::test]
async fn large_namespaces_are_split_into_several_reports() -> TestResult {
    let mut report = support::mixed_report().await?;
    let check = sample_check("k8s.demo.privileged")?;
    report.evidence = (0..RESULTS_PER_REPORT * 2 + 1)
        .map(|i| Evidence::new(&check, support::k8s("Pod", Some("big"), &format!("p{i:04}")), Status::Pass, "ok"))
        .collect();
    let objects = policy_reports(&report, PolicyReportApi::OpenReports);
    let names: Vec<&str> = objects.iter().filter_map(|o| o["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["compliance-rs", "compliance-rs-2", "compliance-rs-3"]);
    assert_eq!(objects[2]["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(objects[0]["summary"]["pass"], RESULTS_PER_REPORT);
    Ok(())
}

#[tokio::test]
async fn the_file_format_is_a_list_kubectl_applies() -> TestResult {
    let report = support::mixed_report().await?;
    for (format, kind) in [(Format::PolicyReport, "PolicyReport"), (Format::OpenReports, "Report")] {
        let list: Value = serde_json::from_slice(&report.render(format)?)?;
        assert_eq!((&list["apiVersion"], &list["kind"]), (&json!("v1"), &json!("List")));
        assert_eq!(list["items"][0]["kind"], kind);
        assert!(report.file_name(format).ends_with(&format!(".{}.json", format.name())));
    }
    Ok(())
}
