//! Helpers every area shares: running the binary, reading its report, a
//! free port, a test cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compliance_test_support::kube_api::{FakeApi, Running, deployment};
use serde_json::{Value, json};

/// Result of a test that uses `?`.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The repository root: the binary runs there.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `compliance` with `args`, without the caller's kubeconfig or AWS settings.
pub fn compliance(args: &[&str]) -> Output {
    compliance_with(args, &[])
}

/// Same, with extra environment variables.
#[allow(clippy::panic)] // a test helper: not being able to start the binary fails the test
pub fn compliance_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compliance"));
    cmd.args(args).current_dir(repo()).env_remove("KUBECONFIG");
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| panic!("cannot run compliance: {e}"))
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON report written in `dir`, checked against the published schema.
pub fn report_in(dir: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let path = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            // `compliance_report_<time>.json`: the other JSON outputs have two dots.
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("compliance_report_") && n.ends_with(".json") && n.matches('.').count() == 1
            })
        })
        .ok_or("no report written")?;
    let report: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    // Every report a test reads must follow the published schema.
    let schema: Value = serde_json::from_str(compliance_report::REPORT_SCHEMA)?;
    let validator = jsonschema::validator_for(&schema)?;
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "report does not follow the schema: {errors:#?}");
    Ok(report)
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> Result<u16, Box<dyn std::error::Error>> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The test API server with one Deployment, `shop/web`, and a kubeconfig
/// for it (context `staging`) in `dir`.
pub async fn cluster_with_web(dir: &Path) -> Result<(Running, PathBuf), Box<dyn std::error::Error>> {
    let api = FakeApi::default();
    api.add("deployments", deployment("shop", "web", json!({"containers": [{"name": "web", "image": "web:1"}]})));
    let server = api.start().await?;
    let kubeconfig = server.write_kubeconfig(dir, "staging")?;
    Ok((server, kubeconfig))
}
