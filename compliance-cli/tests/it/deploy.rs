//! The in-cluster install (deploy/kubernetes): our own restricted profile
//! holds for it, its default RBAC can read and nothing more, and every object
//! follows its schema (kubernetes-validate and the CRDs, tests/validate.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{TestResult, compliance, repo, report_in, text};

fn deploy() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// The objects of one YAML file.
fn objects(path: &Path) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let name = path.display().to_string();
    let stream = compliance_core::yaml::parse_documents(&text, &name);
    if let Some(e) = stream.error {
        return Err(e.to_string().into());
    }
    Ok(stream.documents.into_iter().map(|d| d.value).filter(|v| !v.is_null()).collect())
}

/// The files a kustomization folder lists, recursively (resources and components).
fn rendered_files(folder: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let spec = objects(&folder.join("kustomization.yaml"))?.into_iter().next().ok_or("empty kustomization")?;
    let mut files = Vec::new();
    for key in ["resources", "components"] {
        for entry in spec[key].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let path = folder.join(entry);
            if path.is_dir() { files.extend(rendered_files(&path)?) } else { files.push(path) }
        }
    }
    Ok(files)
}

#[test]
fn the_install_passes_our_own_scan_at_fail_on_low() -> TestResult {
    let out_dir = tempfile::tempdir()?;
    let out_dir = out_dir.path().to_str().ok_or("path")?;
    let out = compliance(&[
        "scan",
        "--k8s-manifests",
        "deploy/kubernetes/base",
        "--k8s-manifests",
        "deploy/kubernetes/components",
        "--fail-on",
        "low",
        "--out",
        out_dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let report = report_in(Path::new(out_dir))?;
    let judged: Vec<&str> = report["evidence"]
        .as_array()
        .ok_or("evidence")?
        .iter()
        .filter(|e| e["resource"]["kind"] == "Deployment" && e["status"] == "pass")
        .filter_map(|e| e["resource"]["name"].as_str())
        .collect();
    for name in ["compliance-monitor", "compliance-webhook"] {
        assert!(judged.iter().filter(|n| **n == name).count() > 20, "{name} was judged by every check: {judged:?}");
    }
    assert_eq!(report["non_compliant"], 0);
    assert_eq!(report["errors"], 0);
    assert!(report["gaps"].as_array().is_some_and(Vec::is_empty), "{}", report["gaps"]);
    Ok(())
}

#[test]
fn the_default_rbac_reads_workloads_and_nothing_else() -> TestResult {
    const READ: [&str; 3] = ["get", "list", "watch"];
    let mut rules = 0;
    let mut roles = Vec::new();
    for file in rendered_files(&deploy().join("base"))? {
        for object in objects(&file)? {
            match object["kind"].as_str() {
                Some("ClusterRole" | "Role") => {
                    roles.push(object["metadata"]["name"].as_str().unwrap_or_default().to_owned());
                    for rule in object["rules"].as_array().ok_or("a role without rules")? {
                        rules += 1;
                        let list = |key: &str| -> Vec<&str> {
                            rule[key].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
                        };
                        let (resources, verbs) = (list("resources"), list("verbs"));
                        assert!(
                            !resources.iter().any(|r| *r == "secrets" || r.contains('*')),
                            "{file:?}: {resources:?}"
                        );
                        assert!(verbs.iter().all(|v| READ.contains(v)), "{file:?}: write verbs {verbs:?}");
                        assert!(rule.get("nonResourceURLs").is_none(), "{file:?}");
                    }
                }
                Some("ClusterRoleBinding" | "RoleBinding") => {
                    let role = object["roleRef"]["name"].as_str().unwrap_or_default();
                    assert!(roles.iter().any(|r| r == role), "{file:?} binds {role}, not a role of the install");
                }
                _ => {}
            }
        }
    }
    assert!(rules >= 3, "the monitor's read rules are there");
    // The opt-in remediation role is the one that may patch, and only workloads.
    let remediate = objects(&deploy().join("components/remediation/clusterrole.yaml"))?;
    assert_eq!(remediate[0]["rules"][0]["verbs"], serde_json::json!(["patch"]));
    assert_eq!(remediate[0]["rules"][0]["resources"], serde_json::json!(["deployments", "statefulsets", "daemonsets"]));
    Ok(())
}

fn tools_python() -> Result<PathBuf, String> {
    std::env::var_os("COMPLIANCE_TOOLS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/compliance-rs/tools-venv/bin/python"))
        })
        .filter(|p| {
            Command::new(p).args(["-c", "import kubernetes_validate"]).output().is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| "kubernetes-validate is not installed: scripts/test installs it".to_owned())
}

/// The Kubernetes version the manifests are validated for.
const KUBERNETES_VERSION: &str = "1.34.0";

#[test]
#[ignore = "needs kubernetes-validate (PyPI): scripts/test installs it"]
fn every_object_follows_the_kubernetes_and_crd_schemas() -> TestResult {
    let python = tools_python()?;
    let script = deploy().join("tests/validate.py");
    let out = Command::new(&python).arg(&script).arg(KUBERNETES_VERSION).output()?;
    let printed = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{printed}");
    for kind in ["Deployment", "ValidatingWebhookConfiguration", "Certificate", "Issuer", "ServiceMonitor", "Secret"] {
        assert!(
            printed.contains(&format!("): {kind} ")) || printed.contains(&format!(" {kind} ")),
            "{kind} validated: {printed}"
        );
    }
    // A misspelt field in a copy is caught, naming the file.
    let copy = tempfile::tempdir()?;
    for file in walk(&deploy())? {
        let target = copy.path().join(file.strip_prefix(deploy())?);
        std::fs::create_dir_all(target.parent().ok_or("parent")?)?;
        std::fs::copy(&file, &target)?;
    }
    let deployment = copy.path().join("base/webhook/deployment.yaml");
    let yaml = std::fs::read_to_string(&deployment)?.replace("  replicas: 2", "  replica: 2");
    std::fs::write(&deployment, yaml)?;
    let out = Command::new(&python).arg(&script).arg(KUBERNETES_VERSION).arg(copy.path()).output()?;
    let printed = text(&out.stdout);
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("base/webhook/deployment.yaml: Deployment compliance-webhook"), "{printed}");
    assert!(printed.contains("'replica' was unexpected"), "{printed}");
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() { files.extend(walk(&path)?) } else { files.push(path) }
    }
    Ok(files)
}
