//! The patched moto server (`moto/patched_moto.py`), started per test on a
//! free loopback port and stopped when dropped.
//!
//! The Python interpreter comes from `COMPLIANCE_MOTO_PYTHON`, else from the
//! virtual environment `scripts/test` creates (`~/.cache/compliance-rs/moto-venv`).
//! Without it, [`Moto::start`] fails: the tests that need moto are marked
//! `#[ignore]` with the reason, so plain `cargo test` lists them as ignored,
//! and `scripts/test` provisions moto and runs them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running patched moto server.
pub struct Moto {
    child: Child,
    port: u16,
    /// Its error output.
    log: PathBuf,
}

/// The Python that runs moto server (and has moto importable), when installed.
pub fn python_path() -> Option<PathBuf> {
    python()
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COMPLIANCE_MOTO_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let venv = PathBuf::from(home).join(".cache/compliance-rs/moto-venv/bin/python");
    venv.exists().then_some(venv)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Moto {
    /// Starts a server; an error when moto is not installed.
    pub fn start() -> Result<Moto, String> {
        let Some(python) = python() else {
            return Err("moto server is not installed: scripts/test installs it (or set COMPLIANCE_MOTO_PYTHON)".into());
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto/patched_moto.py");
        // Another process may take the port between the probe and the bind: retry.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| e.to_string())?;
            // Its error output goes to a file, so that a server that exits says why.
            let log_path = std::env::temp_dir().join(format!("compliance-moto-{}-{port}.log", std::process::id()));
            let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
            let child = Command::new(&python)
                .arg(&script)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
            let mut moto = Moto { child, port, log: log_path.clone() };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = moto.child.try_wait() {
                    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let tail: Vec<&str> = said.lines().rev().take(5).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    last = format!("moto exited with {status}: {}", tail.join(" | "));
                    break;
                }
                if moto.request("GET", "/_compliance/health", None).is_ok() {
                    return Ok(moto);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if last.is_empty() {
                last = "moto did not answer within 30 s".into();
            }
        }
        Err(last)
    }

    /// The endpoint URL for the AWS SDK.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.1 request to the server; returns status and JSON body.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            payload.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(payload.as_bytes()))
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
        let (headers, body) = response.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
        let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
        let json = serde_json::from_str(body).unwrap_or(Value::Null);
        Ok((status, json))
    }

    fn control(&self, path: &str, body: &Value) -> Result<(), String> {
        match self.request("POST", path, Some(body))? {
            (200, _) => Ok(()),
            (status, answer) => Err(format!("{path}: {status} {answer}")),
        }
    }

    /// Calls per `service:Action` since the start or the last reset.
    pub fn calls(&self) -> Result<Value, String> {
        self.request("GET", "/_compliance/calls", None).map(|(_, v)| v)
    }

    /// Resets the call counters.
    pub fn reset_calls(&self) -> Result<(), String> {
        self.control("/_compliance/calls/reset", &Value::Null)
    }

    /// Sets credential-report columns moto cannot produce:
    /// `{"users": {name: {column: value}}, "root": {column: value}}`.
    pub fn set_credential_report(&self, fields: &Value) -> Result<(), String> {
        self.control("/_compliance/credential-report", fields)
    }

    /// Stores AWS Config evaluations for a rule:
    /// `{"rule": name, "region": r, "results": [{"ResourceType", "ResourceId", "ComplianceType", "Annotation"}]}`.
    pub fn put_config_evaluations(&self, evaluations: &Value) -> Result<(), String> {
        self.control("/_compliance/config-evaluations", evaluations)
    }

    /// Makes an AWS Config conformance pack over existing rules (patch 8):
    /// `{"name": pack, "region": r, "rules": [{"rule": name, "controls": [...]}]}`.
    pub fn put_conformance_pack(&self, pack: &Value) -> Result<(), String> {
        self.control("/_compliance/conformance-packs", pack)
    }

    /// Caps the page size of actions of patch 8 (`{"Action": n}`), so that
    /// a test reaches every page.
    pub fn page_sizes(&self, sizes: &Value) -> Result<(), String> {
        self.control("/_compliance/page-sizes", sizes)
    }

    /// Makes STS refuse to assume these roles (patch 10).
    pub fn refuse_roles(&self, roles: &[&str]) -> Result<(), String> {
        self.control("/_compliance/refuse-roles", &serde_json::json!({ "roles": roles }))
    }

    /// Makes AssumeRole's credentials expire this many seconds after they are issued (patch 14).
    pub fn credential_lifetime(&self, seconds: u64) -> Result<(), String> {
        self.control("/_compliance/credential-lifetime", &serde_json::json!({ "seconds": seconds }))
    }

    /// Sets the regions enabled for an account (patch 11).
    pub fn enable_regions(&self, account: &str, regions: &[&str]) -> Result<(), String> {
        self.control("/_compliance/regions", &serde_json::json!({ "account": account, "enabled": regions }))
    }

    /// Injects faults (patch 7): `{"every": N, "status": 500|429|503,
    /// "delay_ms": D, "services": [...]}`; `{"every": 0}` stops them.
    pub fn faults(&self, faults: &Value) -> Result<(), String> {
        self.control("/_compliance/faults", faults)
    }

    /// How many faults were injected since they were set.
    pub fn faults_injected(&self) -> Result<u64, String> {
        let (_, v) = self.request("GET", "/_compliance/faults", None)?;
        v["injected"].as_u64().ok_or_else(|| format!("no count in {v}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
