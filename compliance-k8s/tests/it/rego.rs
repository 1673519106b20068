//! Rego policies (feature `rego`): our example policy (v1) and a v0 policy
//! of our own, on admission requests, manifests and the shared corpus; the
//! policy of the blog post this project grew from, run as published, when
//! `../shared/docs/SEED-ARTICLE.md` is there; load errors; bounded
//! evaluation.

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

const EXAMPLE_ID: &str = "rego.example.soc2_workloads";
/// The check id the blog post's policy gets (from its package, as it has no metadata).
const SEED_ID: &str = "rego.kubernetes.admission";

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn example_policies() -> Result<RegoPolicies, Box<dyn std::error::Error>> {
    let (set, errors) = RegoPolicies::load(&[policies_dir()], &RegoConfig::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(set.policies().len(), 1);
    Ok(set)
}

/// The blog post's policy, as published (Rego v0), read from the shared
/// docs: the project does not carry third-party code. The tests that use it
/// are ignored by plain `cargo test`; `scripts/test` runs them when the file
/// is there.
fn seed_policy() -> Result<RegoPolicy, Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/docs/SEED-ARTICLE.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = text.split("```rego\n").nth(1).and_then(|b| b.split("```").next()).ok_or("no rego block")?;
    Ok(RegoPolicy::from_source(block, "SEED-ARTICLE.md", &RegoConfig::default())?)
}

fn messages(e: &Evidence) -> Vec<String> {
    e.details["messages"].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_owned)).collect()
}

fn pod_and_deployment() -> (Value, Value) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}],
                 "volumes": [{"name": "creds", "secret": {"secretName": "creds"}}]}});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "labels": {"data-retention": "1y"}},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "api:1"}]}}}});
    (pod, deployment)
}

#[test]
fn the_example_policy_judges_pods_and_controllers() -> TestResult {
    let set = example_policies()?;
    let policy = &set.policies()[0];
    assert_eq!(policy.check().id.as_str(), EXAMPLE_ID);
    assert_eq!(policy.syntax(), RegoSyntax::V1);
    let (pod, deployment) = pod_and_deployment();
    let verdict = policy.judge(&admission_input(&pod, Some("shop")));
    assert_eq!(verdict.status, Status::Fail);
    let mut got: Vec<&str> =
        verdict.details["messages"].as_array().ok_or("messages")?.iter().filter_map(Value::as_str).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "container web has no memory limit",
            "secret volume creds states no defaultMode",
            "the pod does not set securityContext.runAsNonRoot: true",
        ]
    );
    let verdict = policy.judge(&admission_input(&deployment, None));
    assert_eq!(verdict.message, "labels missing: data-classification, compliance-scope");
    Ok(())
}

#[test]
fn a_v0_policy_runs_as_written_without_importing_future_keywords() -> TestResult {
    // `in` is a keyword in v0 only after `import future.keywords.in`; the loader adds it.
    let v0 = "package compliance.example.v0\n\ndeny[msg] {\n  input.request.kind.kind in [\"Deployment\", \"StatefulSet\"]\n  not input.request.object.metadata.labels.owner\n  msg := \"no owner label\"\n}\n";
    let policy = RegoPolicy::from_source(v0, "v0.rego", &RegoConfig::default())?;
    assert_eq!(policy.syntax(), RegoSyntax::V0);
    let (_, deployment) = pod_and_deployment();
    let verdict = policy.judge(&admission_input(&deployment, None));
    assert_eq!((verdict.status, verdict.message.as_str()), (Status::Fail, "no owner label"));
    Ok(())
}

#[test]
#[ignore = "needs the blog post's text (../shared/docs/SEED-ARTICLE.md, outside this repository)"]
fn the_blog_posts_policy_runs_as_published_and_judges_like_the_example() -> TestResult {
    let seed = seed_policy()?;
    assert_eq!(seed.syntax(), RegoSyntax::V0);
    let example = example_policies()?;
    let ours = &example.policies()[0];
    let (pod, deployment) = pod_and_deployment();
    for object in [&pod, &deployment] {
        let (a, b) = (seed.judge(&admission_input(object, None)), ours.judge(&admission_input(object, None)));
        assert_eq!(a.status, b.status, "{object}");
        assert_eq!(messages_of(&a).len(), messages_of(&b).len(), "{a:?} / {b:?}");
    }
    Ok(())
}

fn messages_of(v: &compliance_core::Verdict) -> Vec<String> {
    v.details["messages"].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_owned)).collect()
}

#[test]
fn admission_requests_are_denied_with_the_policy_messages() -> TestResult {
    let set = example_policies()?;
    let config = AdmissionConfig::default()
        .with_scope(Scope::only([EXAMPLE_ID]))
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
    assert!(message.starts_with("rego.example.soc2_workloads (high): labels missing"), "{message}");
    Ok(())
}

#[test]
fn manifests_are_judged_as_admission_requests() -> TestResult {
    let config = CheckConfig::default().with_policies(example_policies()?);
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: c, image: x:1, resources: {limits: {memory: 64Mi}}}]\n";
    let c = scan_text(text, "pod.yaml", &config, &Scope::only([EXAMPLE_ID]));
    assert_eq!(c.evidence.len(), 1);
    for e in &c.evidence {
        assert_eq!(e.status, Status::Pass, "{e:?}");
        assert_eq!(e.resource.file.as_deref(), Some("pod.yaml"));
    }
    // A Service has no pod template: the example policy (default kinds) does not judge it.
    let c = scan_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "svc.yaml", &config, &Scope::all());
    assert!(c.evidence.is_empty());
    Ok(())
}

#[test]
fn a_policy_that_does_not_compile_names_file_and_line_and_the_others_load() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(policies_dir().join("soc2-workloads.rego"), dir.path().join("a_good.rego"))?;
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
fn a_policy_nested_too_deep_is_refused_before_the_parser_sees_it() -> TestResult {
    // Found by the rego_metadata fuzz target: regorus's parse time doubles with
    // every bracket level, so 40 levels would never finish.
    let deep = format!("package p\n\n# [[[[[[[[[[[[[[[[[[[[ in a comment\nx := {}\n", "[".repeat(40));
    let error =
        RegoPolicy::from_source(&deep, "deep.rego", &RegoConfig::default()).err().ok_or("deep policy loaded")?;
    assert!(matches!(&error, RegoError::Invalid { line: Some(4), .. }), "{error}");
    assert!(error.to_string().contains("nest deeper than 16 levels"), "{error}");
    // Brackets in strings and comments do not count, and 16 real levels load.
    let fine = format!(
        "package fine\n# {{{{{{{{{{{{{{{{{{{{{{{{\ns := \"[[[[[[[[[[[[[[[[[[[[[[\"\nr := `{{{{{{{{{{{{{{{{{{{{{{{{`\nx := {}1{}\ndeny contains s if false\n",
        "[".repeat(compliance_k8s::MAX_REGO_NESTING),
        "]".repeat(compliance_k8s::MAX_REGO_NESTING)
    );
    RegoPolicy::from_source(&fine, "fine.rego", &RegoConfig::default())?;
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

/// What the example policy says about one object, per native check.
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
        return Err(format!("the shared corpus is not at {}", dir.display()).into());
    }
    let mut policies = example_policies()?;
    // The blog post's policy joins when its text is there: it must give as many messages as ours.
    if let Ok(seed) = seed_policy() {
        policies.push(seed)?;
    }
    let config = CheckConfig::default().with_policies(policies);
    let scope = Scope::only([
        SEED_ID,
        EXAMPLE_ID,
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
        let ours =
            evidence.iter().find(|e| e.check_id.as_str() == EXAMPLE_ID).ok_or(format!("no evidence for {id}"))?;
        // The blog post's policy, when it is there, gives as many messages on every object.
        if let Some(seed) = evidence.iter().find(|e| e.check_id.as_str() == SEED_ID) {
            assert_eq!(messages(seed).len(), messages(ours).len(), "the blog post's policy and ours disagree on {id}");
        }
        // Ids are "<file>#<document>/<namespace>/<kind>/<name>": read the object back.
        let (file, rest) = id.split_once('#').ok_or("id")?;
        let index: usize = rest.split('/').next().ok_or("index")?.parse()?;
        let text = std::fs::read_to_string(file)?;
        let object =
            compliance_core::yaml::parse_documents(&text, file).documents.into_iter().nth(index).ok_or("doc")?.value;
        judged.push(Judged {
            kind: ours.resource.kind.clone(),
            object,
            native: evidence.iter().map(|e| (e.check_id.to_string(), e.status)).collect(),
            rego: messages(ours),
        });
    }
    Ok(judged)
}

fn containers(pod_spec: &Value, field: &str) -> Vec<Value> {
    pod_spec[field].as_array().cloned().unwrap_or_default()
}

/// Why the example policy's rule and the built-in check may disagree on one object, checked
/// against the object itself; `None` when nothing explains it.
fn explain(check: &str, object: &Value, native: Option<Status>, rego_fails: bool) -> Option<&'static str> {
    if native == Some(Status::Error) {
        return Some(
            "a field has the wrong type: the built-in check gives an evidence gap, the policy judges the object anyway",
        );
    }
    let spec = &object["spec"];
    let all: Vec<Value> = [containers(spec, "containers"), containers(spec, "initContainers")].concat();
    match (check, rego_fails) {
        ("k8s.pod.run_as_non_root", true) if all.iter().all(|c| c["securityContext"]["runAsNonRoot"] == true) => {
            Some("every container sets runAsNonRoot: true; the policy only reads the pod's setting")
        }
        ("k8s.pod.run_as_non_root", false) if all.iter().any(|c| c["securityContext"]["runAsNonRoot"] == false) => {
            Some("a container overrides the pod's runAsNonRoot: true with false; Kubernetes applies the container's")
        }
        ("k8s.container.memory_limit", false)
            if containers(spec, "initContainers").iter().any(|c| c["resources"]["limits"]["memory"].is_null()) =>
        {
            Some("an init container has no memory limit; the policy only reads spec.containers")
        }
        ("k8s.volume.secret_default_mode", false)
            if spec["volumes"].as_array().into_iter().flatten().any(|v| v["secret"].is_object()) =>
        {
            Some("defaultMode is set but not restrictive (or an item's mode is not); the policy only checks it is set")
        }
        _ => None,
    }
}

#[test]
#[ignore = "needs the shared corpus of third-party manifests (../shared/corpus/k8s, outside this repository)"]
fn the_example_policy_agrees_with_the_native_checks_on_the_shared_corpus_except_where_its_rules_differ() -> TestResult {
    let judged = corpus_objects()?;
    let rules: [(&str, &[&str], &str); 4] = [
        ("k8s.pod.run_as_non_root", &["Pod"], "runAsNonRoot"),
        ("k8s.container.memory_limit", &["Pod"], "has no memory limit"),
        ("k8s.volume.secret_default_mode", &["Pod"], "states no defaultMode"),
        ("k8s.workload.required_labels", &["Deployment", "StatefulSet", "DaemonSet"], "labels missing"),
    ];
    let mut agreements = 0;
    let mut explained: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for object in &judged {
        for (check, kinds, marker) in rules {
            if !kinds.contains(&object.kind.as_str()) {
                // The policy's rule does not judge this kind: it must say nothing.
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
                    "{check} on {}: policy fails={rego_fails}, native={:?}",
                    object.object["metadata"]["name"],
                    object.native.get(check)
                ));
            }
        }
    }
    eprintln!("example policy vs native checks on the corpus: {agreements} agree; differences: {explained:#?}");
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    assert!(agreements > 100, "{agreements}");
    // The corpus's only difference: the Pod whose `lun: <ADD LUN ID Here>` Kubernetes would reject.
    assert_eq!(explained.values().sum::<usize>(), 2, "{explained:#?}");
    Ok(())
}

/// Where the example policy's rules and the built-in checks differ, one object each: `explain`
/// must recognise every case, and the verdicts must really differ.
#[test]
fn each_documented_difference_is_real() -> TestResult {
    let config = CheckConfig::default().with_policies(example_policies()?);
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
    for (check, spec, policy_fails, ours) in cases {
        let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n{spec}");
        let c = scan_text(&text, "pod.yaml", &config, &Scope::only([check, EXAMPLE_ID]));
        let native = c.evidence.iter().find(|e| e.check_id.as_str() == check).ok_or("native")?;
        let rego = c.evidence.iter().find(|e| e.check_id.as_str() == EXAMPLE_ID).ok_or("rego")?;
        assert_eq!(native.status, ours, "{check}: {spec}");
        assert_eq!(rego.status == Status::Fail, policy_fails, "{check}: {rego:?}");
        let object = compliance_core::yaml::parse_documents(&text, "pod.yaml").documents.remove(0).value;
        assert!(explain(check, &object, Some(ours), policy_fails).is_some(), "{check}: {spec}");
    }
    Ok(())
}
