//! The admission webhook under sustained load from a second process on
//! loopback (wrk, from Debian's packages), as real traffic is: every review
//! names a new object. Prints p50, p99, errors and the webhook's resident
//! memory, for "unique objects" and, for comparison, "the same review".
//!
//! ```text
//! cargo build --release -p compliance-cli
//! cargo run --release -p compliance-benches --bin webhook_load -- [SECONDS] [CONNECTIONS]
//! ```
//!
//! The webhook is the release binary (`$CARGO_TARGET_DIR/release/compliance`,
//! or `COMPLIANCE_BIN`), judging with the example Rego policies as well.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compliance_test_support::tls::TestCert;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A privileged Pod review; `%s` is replaced by wrk with a unique name.
const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-%s","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"shop","operation":"CREATE","name":"pod-%s","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod-%s","namespace":"shop","labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27","securityContext":{"privileged":true}}]}}}}"#;

fn lua(unique: bool) -> String {
    let name = if unique { r#"id .. "-" .. counter"# } else { r#""same""# };
    format!(
        r#"local template = [[{REVIEW}]]
local counter = 0
local threads = {{}}
function setup(thread)
  thread:set("id", tostring(#threads + 1))
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local name = {name}
  local body = template:gsub("%%s", name)
  return wrk.format("POST", "/validate", {{["Content-Type"] = "application/json"}}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d seconds=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"#
    )
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn binary() -> PathBuf {
    std::env::var_os("COMPLIANCE_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("release/compliance")
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(60);
    let connections: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let bin = binary();
    if !bin.is_file() {
        return Err(format!("{} not found: cargo build --release -p compliance-cli", bin.display()).into());
    }
    Command::new("wrk").arg("--version").output().map_err(|e| format!("wrk not found ({e}): apt-get install wrk"))?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir()?;
    let cert = TestCert::write(dir.path());
    println!("| traffic | connections | seconds | reviews/s | p50 | p99 | errors | RSS start | RSS max | RSS end |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for unique in [true, false] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut webhook = Command::new(&bin)
            .args(["webhook", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .args(["--rego-policy", "examples/policies"])
            .arg("--tls-cert")
            .arg(&cert.cert)
            .arg("--tls-key")
            .arg(&cert.key)
            .current_dir(&repo)
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = webhook.kill();
                return Err("the webhook did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = webhook.id();
        let start = rss_kib(pid).unwrap_or_default();
        let script = dir.path().join(if unique { "unique.lua" } else { "same.lua" });
        std::fs::write(&script, lua(unique))?;
        let mut wrk = Command::new("wrk")
            .args(["-t", "2", "-c", &connections.to_string(), "-d", &format!("{seconds}s"), "--latency", "-s"])
            .arg(&script)
            .arg(format!("https://127.0.0.1:{port}/validate"))
            .stdout(Stdio::piped())
            .spawn()?;
        let mut max = start;
        let began = Instant::now();
        while wrk.try_wait()?.is_none() {
            std::thread::sleep(Duration::from_millis(500));
            max = max.max(rss_kib(pid).unwrap_or_default());
            if began.elapsed() > Duration::from_secs(seconds + 60) {
                let _ = wrk.kill();
            }
        }
        let end = rss_kib(pid).unwrap_or_default();
        let mut result = String::new();
        if let Some(out) = wrk.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line?;
                if line.starts_with("RESULT") {
                    result = line;
                }
            }
        }
        let field = |key: &str| {
            result.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}="))).unwrap_or("?").to_owned()
        };
        let requests: f64 = field("requests").parse().unwrap_or(0.0);
        let secs: f64 = field("seconds").parse().unwrap_or(1.0);
        println!(
            "| {} | {connections} | {seconds} | {:.0} | {} ms | {} ms | {} (+{} non-2xx) | {} MB | {} MB | {} MB |",
            if unique { "every review a new object" } else { "the same review repeated" },
            requests / secs.max(0.001),
            field("p50_ms"),
            field("p99_ms"),
            field("errors"),
            field("non2xx"),
            start / 1024,
            max / 1024,
            end / 1024
        );
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let _ = webhook.wait();
    }
    Ok(())
}
