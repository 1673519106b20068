//! Peak memory and time of one scan of N generated workloads, to show that
//! memory grows linearly: `cargo run --release -p compliance-benches --bin k8s_scan_memory -- 1000 10000 100000`
//! (each size in a fresh process).

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::time::Instant;

// The allocator the `compliance` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use compliance_core::Scope;
use compliance_k8s::{CheckConfig, scan_text};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.len() > 1 {
        // One process per size, so that each peak is its own.
        let exe = std::env::current_exe().expect("own path");
        for n in sizes {
            let status = std::process::Command::new(&exe).arg(n.to_string()).status().expect("child");
            assert!(status.success());
        }
        return;
    }
    let n = sizes.first().copied().unwrap_or(10_000);
    let text = generate(n);
    let before = peak_rss_kib().unwrap_or(0);
    let start = Instant::now();
    let collection = scan_text(&text, "bench.yaml", &CheckConfig::default(), &Scope::all());
    let elapsed = start.elapsed();
    let after = peak_rss_kib().unwrap_or(0);
    println!(
        "{n:>7} workloads ({:>6} KiB of YAML): {:>8.1} ms, {:>8} evidence, peak RSS {:>7} KiB (input alone {:>7} KiB), {:.1} KiB per workload",
        text.len() / 1024,
        elapsed.as_secs_f64() * 1e3,
        collection.evidence.len(),
        after,
        before,
        (after.saturating_sub(before)) as f64 / n as f64
    );
}

fn generate(n: usize) -> String {
    compliance_benches::generate_workloads(n)
}
