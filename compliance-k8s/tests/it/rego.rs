//! Rego policies (feature `rego`): the seed article's policy in v0 and v1
//! syntax, on admission requests, manifests and the shared corpus; load
//! errors; bounded evaluation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use compliance_core::{Evidence, Scope, Status};
use compliance_k8s::{
    AdmissionConfig, CheckConfig, RegoConfig, RegoError, RegoPolicies, RegoPolicy, RegoSyntax, admission_input, review,
    scan_paths, scan_text,
};
use serde_json::{Value, json};

use crate::TestResult;

const V0_ID: &str = "rego.kubernetes.admission";
const V1_ID: &str = "rego.article.soc2_admission";

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn article_policies() -> Result<RegoPolicies, Box<dyn std::error::Error>> {
    let (set, errors) = RegoPolicies::load(&[policies_dir()], &RegoConfig::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(set.policies().len(), 2);
    Ok(set)
}

fn messages(e: &Evidence) -> Vec<String> {
    e.details["messages"].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_owned)).collect()
}

#[test]
fn the_article_policy_runs_as_written_in_v0_and_in_v1_syntax() -> TestResult {
    let set = article_policies()?;
    let v0 = set.policies().iter().find(|p| p.check().id.as_str() == V0_ID).ok_or("v0 policy")?;
    let v1 = set.policies().iter().find(|p| p.check().id.as_str() == V1_ID).ok_or("v1 policy")?;
    assert_eq!(v0.syntax(), RegoSyntax::V0);
    assert_eq!(v1.syntax(), RegoSyntax::V1);
    // The v0 file is the article's text, byte for byte.
    let article =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/docs/SEED-ARTICLE.md"))
            .unwrap_or_default();
    if let Some(block) = article.split("```rego\n").nth(1).and_then(|b| b.split("```").next()) {
        assert_eq!(std::fs::read_to_string(policies_dir().join("article-v0.rego"))?, block);
    }

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}],
                 "volumes": [{"name": "creds", "secret": {"secretName": "creds"}}]}});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "labels": {"data-retention": "1y"}},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "api:1"}]}}}});
    for policy in [v0, v1] {
        let verdict = policy.judge(&admission_input(&pod, Some("shop")));
        assert_eq!(verdict.status, Status::Fail);
        let mut got: Vec<&str> =
            verdict.details["messages"].as_array().ok_or("messages")?.iter().filter_map(Value::as_str).collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "SOC 2 Requirement: Container web must have memory limits",
                "SOC 2 Requirement: Pods must run as non-root user",
                "SOC 2 Requirement: Secrets must have restricted file permissions",
            ]
        );
        let verdict = policy.judge(&admission_input(&deployment, None));
        assert_eq!(
            verdict.message,
            r#"Missing required compliance labels: ["data-classification", "compliance-scope"]"#
        );
    }
    Ok(())
}

#[test]
fn admission_requests_are_denied_with_the_policy_messages() -> TestResult {
    let set = article_policies()?;
    let config = AdmissionConfig::default()
        .with_scope(Scope::only([V1_ID]))
        .with_checks(CheckConfig::default().with_policies(set));
    let request = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
                       "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "api:1"}]}}}}}
    });
    let answer = review(&request, &config)?;
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().ok_or("message")?;
    assert!(message.starts_with("rego.article.soc2_admission (high): Missing required compliance labels"), "{message}");
    Ok(())
}

#[test]
fn manifests_are_judged_as_admission_requests() -> TestResult {
    let config = CheckConfig::default().with_policies(article_policies()?);
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: c, image: x:1, resources: {limits: {memory: 64Mi}}}]\n";
    let c = scan_text(text, "pod.yaml", &config, &Scope::only([V0_ID, V1_ID]));
    assert_eq!(c.evidence.len(), 2);
    for e in &c.evidence {
        assert_eq!(e.status, Status::Pass, "{e:?}");
        assert_eq!(e.resource.file.as_deref(), Some("pod.yaml"));
    }
    // A Service has no pod template: the article's policy (default kinds) does not judge it.
    let c = scan_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "svc.yaml", &config, &Scope::all());
    assert!(c.evidence.is_empty());
    Ok(())
}

#[test]
fn a_policy_that_does_not_compile_names_file_and_line_and_the_others_load() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(policies_dir().join("article-v1.rego"), dir.path().join("a_good.rego"))?;
    std::fs::write(dir.path().join("b_broken.rego"), "package broken\n\ndeny contains msg if {\n  msg := \n}\n")?;
    std::fs::write(
        dir.path().join("c_meta.rego"),
        "# METADATA\n# custom:\n#   severity: urgent\npackage meta\ndeny contains 1 if false\n",
    )?;
    std::fs::write(dir.path().join("d_notes.rego"), "this is not rego")?;
    std::fs::write(dir.path().join("e_test.rego"), "not rego either, but OPA skips _test files and so do we")?;
    let (set, errors) = RegoPolicies::load(&[dir.path()], &RegoConfig::default());
    assert_eq!(set.policies().len(), 1);
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{texts:#?}");
    assert!(
        matches!(&errors[0], RegoError::Invalid { path, line: Some(4), .. } if path.ends_with("b_broken.rego")),
        "{texts:#?}"
    );
    assert!(texts[1].contains("c_meta.rego:1: METADATA: severity: unknown severity \"urgent\""), "{texts:#?}");
    assert!(texts[2].ends_with("d_notes.rego: no `package` line"), "{texts:#?}");
    Ok(())
}

#[test]
fn a_runaway_policy_is_stopped_and_becomes_error_evidence() -> TestResult {
    let slow = "package slow\n\ndeny contains msg if {\n  some i in numbers.range(1, 100000)\n  some j in numbers.range(1, 100000)\n  i == j + 1000000\n  msg := \"never\"\n}\n";
    let policy = RegoPolicy::from_source(slow, "slow.rego", &RegoConfig::default())?;
    let started = Instant::now();
    let verdict = policy.judge(&json!({}));
    assert_eq!(verdict.status, Status::Error, "{verdict:?}");
    assert!(verdict.message.contains("time limit"), "{}", verdict.message);
    // The default limit is one second; unbounded, this loop runs for hours.
    assert!(started.elapsed() < Duration::from_secs(30));
    Ok(())
}

/// What the article's policy says about one object, per native check.
#[derive(Debug)]
struct Judged {
    kind: String,
    object: Value,
    native: BTreeMap<String, Status>,
    rego: Vec<String>,
}

fn corpus_objects() -> Result<Vec<Judged>, Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/k8s");
    if !dir.is_dir() {
        eprintln!("SKIPPED: shared corpus not found at {}", dir.display());
        return Ok(Vec::new());
    }
    let config = CheckConfig::default().with_policies(article_policies()?);
    let scope = Scope::only([
        V0_ID,
        V1_ID,
        "k8s.pod.run_as_non_root",
        "k8s.container.memory_limit",
        "k8s.volume.secret_default_mode",
        "k8s.workload.required_labels",
    ]);
    let collection = scan_paths(&[dir], &config, &scope);
    let mut by_resource: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for e in collection.evidence {
        by_resource.entry(e.resource.id.clone()).or_default().push(e);
    }
    let mut judged = Vec::new();
    for (id, evidence) in by_resource {
        let v0 = evidence.iter().find(|e| e.check_id.as_str() == V0_ID).ok_or(format!("no v0 evidence for {id}"))?;
        let v1 = evidence.iter().find(|e| e.check_id.as_str() == V1_ID).ok_or(format!("no v1 evidence for {id}"))?;
        let (mut m0, mut m1) = (messages(v0), messages(v1));
        m0.sort();
        m1.sort();
        assert_eq!(m0, m1, "v0 and v1 disagree on {id}");
        // Ids are "<file>#<document>/<namespace>/<kind>/<name>": read the object back.
        let (file, rest) = id.split_once('#').ok_or("id")?;
        let index: usize = rest.split('/').next().ok_or("index")?.parse()?;
        let text = std::fs::read_to_string(file)?;
        let object =
            compliance_core::yaml::parse_documents(&text, file).documents.into_iter().nth(index).ok_or("doc")?.value;
        judged.push(Judged {
            kind: v0.resource.kind.clone(),
            object,
            native: evidence.iter().map(|e| (e.check_id.to_string(), e.status)).collect(),
            rego: m0,
        });
    }
    Ok(judged)
}

fn containers(pod_spec: &Value, field: &str) -> Vec<Value> {
    pod_spec[field].as_array().cloned().unwrap_or_default()
}

/// Why the article's rule and ours may disagree on one object, checked
/// against the object itself; `None` when nothing explains it.
fn explain(check: &str, object: &Value, native: Option<Status>, rego_fails: bool) -> Option<&'static str> {
    if native == Some(Status::Error) {
        return Some(
            "a field has the wrong type: ours is an evidence gap, the article's policy judges the object anyway",
        );
    }
    let spec = &object["spec"];
    let all: Vec<Value> = [containers(spec, "containers"), containers(spec, "initContainers")].concat();
    match (check, rego_fails) {
        ("k8s.pod.run_as_non_root", true) if all.iter().all(|c| c["securityContext"]["runAsNonRoot"] == true) => {
            Some("every container sets runAsNonRoot: true; the article only reads the pod's setting")
        }
        ("k8s.pod.run_as_non_root", false) if all.iter().any(|c| c["securityContext"]["runAsNonRoot"] == false) => {
            Some("a container overrides the pod's runAsNonRoot: true with false; Kubernetes applies the container's")
        }
        ("k8s.container.memory_limit", false)
            if containers(spec, "initContainers").iter().any(|c| c["resources"]["limits"]["memory"].is_null()) =>
        {
            Some("an init container has no memory limit; the article only reads spec.containers")
        }
        ("k8s.volume.secret_default_mode", false)
            if spec["volumes"].as_array().into_iter().flatten().any(|v| v["secret"].is_object()) =>
        {
            Some("defaultMode is set but not restrictive (or an item's mode is not); the article only checks it is set")
        }
        _ => None,
    }
}

#[test]
fn the_article_policy_agrees_with_the_native_checks_on_the_corpus_except_where_its_rules_differ() -> TestResult {
    let judged = corpus_objects()?;
    if judged.is_empty() {
        return Ok(());
    }
    let rules: [(&str, &[&str], &str); 4] = [
        ("k8s.pod.run_as_non_root", &["Pod"], "Pods must run as non-root"),
        ("k8s.container.memory_limit", &["Pod"], "must have memory limits"),
        ("k8s.volume.secret_default_mode", &["Pod"], "Secrets must have restricted file permissions"),
        (
            "k8s.workload.required_labels",
            &["Deployment", "StatefulSet", "DaemonSet"],
            "Missing required compliance labels",
        ),
    ];
    let mut agreements = 0;
    let mut explained: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for object in &judged {
        for (check, kinds, marker) in rules {
            if !kinds.contains(&object.kind.as_str()) {
                // The article's rule does not judge this kind: it must say nothing.
                assert!(!object.rego.iter().any(|m| m.contains(marker)), "{object:?}");
                continue;
            }
            let rego_fails = object.rego.iter().any(|m| m.contains(marker));
            let native_fails = object.native.get(check) == Some(&Status::Fail);
            if rego_fails == native_fails {
                agreements += 1;
            } else if let Some(reason) = explain(check, &object.object, object.native.get(check).copied(), rego_fails) {
                *explained.entry(reason).or_default() += 1;
            } else {
                unexplained.push(format!(
                    "{check} on {}: article fails={rego_fails}, native={:?}",
                    object.object["metadata"]["name"],
                    object.native.get(check)
                ));
            }
        }
    }
    eprintln!("article policy vs native checks on the corpus: {agreements} agree; differences: {explained:#?}");
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    assert!(agreements > 100, "{agreements}");
    // The corpus's only difference: the Pod whose `lun: <ADD LUN ID Here>` Kubernetes would reject.
    assert_eq!(explained.values().sum::<usize>(), 2, "{explained:#?}");
    Ok(())
}

/// Where the article's rules and ours differ, one object each: `explain`
/// must recognise every case, and the verdicts must really differ.
#[test]
fn each_documented_difference_is_real() -> TestResult {
    let config = CheckConfig::default().with_policies(article_policies()?);
    let cases: [(&str, &str, bool, Status); 4] = [
        (
            "k8s.pod.run_as_non_root",
            "spec:\n  containers: [{name: c, image: x:1, securityContext: {runAsNonRoot: true}, resources: {limits: {memory: 1Mi}}}]\n",
            true,
            Status::Pass,
        ),
        (
            "k8s.pod.run_as_non_root",
            "spec:\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: c, image: x:1, securityContext: {runAsNonRoot: false}, resources: {limits: {memory: 1Mi}}}]\n",
            false,
            Status::Fail,
        ),
        (
            "k8s.container.memory_limit",
            "spec:\n  securityContext: {runAsNonRoot: true}\n  initContainers: [{name: i, image: x:1}]\n  containers: [{name: c, image: x:1, resources: {limits: {memory: 1Mi}}}]\n",
            false,
            Status::Fail,
        ),
        (
            "k8s.volume.secret_default_mode",
            "spec:\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: c, image: x:1, resources: {limits: {memory: 1Mi}}}]\n  volumes: [{name: s, secret: {secretName: s, defaultMode: 0644}}]\n",
            false,
            Status::Fail,
        ),
    ];
    for (check, spec, article_fails, ours) in cases {
        let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n{spec}");
        let c = scan_text(&text, "pod.yaml", &config, &Scope::only([check, V1_ID]));
        let native = c.evidence.iter().find(|e| e.check_id.as_str() == check).ok_or("native")?;
        let rego = c.evidence.iter().find(|e| e.check_id.as_str() == V1_ID).ok_or("rego")?;
        assert_eq!(native.status, ours, "{check}: {spec}");
        assert_eq!(rego.status == Status::Fail, article_fails, "{check}: {rego:?}");
        let object = compliance_core::yaml::parse_documents(&text, "pod.yaml").documents.remove(0).value;
        assert!(explain(check, &object, Some(ours), article_fails).is_some(), "{check}: {spec}");
    }
    Ok(())
}
