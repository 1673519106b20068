//! Our manifest scan against Checkov's, on the same generated workloads, in
//! one run: each tool as a whole process, from start to its report.
//!
//! ```text
//! cargo build --release -p compliance-cli
//! cargo run --release -p compliance-benches --bin k8s_vs_checkov -- 1000 10000
//! ```
//! Checkov is `$COMPLIANCE_CHECKOV`, else `checkov` on the PATH, else the
//! one `scripts/test` installs (`~/.cache/compliance-rs/checkov-venv`); when
//! none is found its column says so and only our figures are printed. Our
//! binary is `$COMPLIANCE_BIN`, else the release build next to this one.
//! Each size is one folder of files of 100 workloads; we run 3 times and
//! keep the median, Checkov once (it takes minutes at 10,000;
//! `CHECKOV_MAX_WORKLOADS=1000` leaves it out above that size). With
//! `COMPLIANCE_BIN_BEFORE=<an earlier build>` that build is measured in the
//! same run, for before-and-after figures.

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn checkov() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("COMPLIANCE_CHECKOV").map(PathBuf::from),
        Some(PathBuf::from("checkov")),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/compliance-rs/checkov-venv/bin/checkov")),
    ];
    candidates.into_iter().flatten().find(|c| {
        Command::new(c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

fn ours() -> PathBuf {
    std::env::var_os("COMPLIANCE_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("own path");
        exe.with_file_name("compliance")
    })
}

/// Wall seconds and peak resident memory (MB, from GNU time when it is
/// installed, else 0) of one run of `program` with `args`; its output goes
/// to `log`.
fn timed(program: &Path, args: &[&std::ffi::OsStr], log: &Path) -> (f64, f64) {
    let gnu_time = Path::new("/usr/bin/time");
    let peak_file = log.with_extension("peak");
    let mut command = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.args(["-f", "%M", "-o"]).arg(&peak_file).arg(program);
        c
    } else {
        Command::new(program)
    };
    command.args(args);
    let log = std::fs::File::create(log).expect("log file");
    let started = Instant::now();
    let status = command.stdout(log.try_clone().expect("log")).stderr(log).status().expect("start");
    let elapsed = started.elapsed().as_secs_f64();
    // Both exit non-zero when they find failures, which generated workloads have; a signal is a crash.
    assert!(status.code().is_some_and(|c| c < 128), "{command:?} crashed: {status}");
    let peak_kib: f64 = std::fs::read_to_string(&peak_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0.0);
    (elapsed, peak_kib / 1024.0)
}

/// The median wall time of `runs` runs, with the peak memory of that run.
fn median(runs: usize, mut one: impl FnMut(usize) -> (f64, f64)) -> (f64, f64) {
    let mut all: Vec<(f64, f64)> = (0..runs).map(&mut one).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all[all.len() / 2]
}

/// `n` generated workloads, 100 to a file, in `folder`; returns the bytes of YAML.
fn write_workloads(folder: &Path, n: usize) -> usize {
    let text = compliance_benches::generate_workloads(n);
    let documents: Vec<&str> = text.split("---\n").filter(|d| !d.trim().is_empty()).collect();
    for (i, chunk) in documents.chunks(100).enumerate() {
        std::fs::write(folder.join(format!("w{i:05}.yaml")), format!("---\n{}", chunk.join("---\n"))).expect("write");
    }
    text.len()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--write DIR N`: only write the files, to run other tools on them.
    if let [flag, folder, n] = &args[..]
        && flag == "--write"
    {
        std::fs::create_dir_all(folder).expect("folder");
        write_workloads(Path::new(folder), n.parse().expect("a count"));
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000] } else { sizes };
    let runs = 3;
    let ours = ours();
    assert!(ours.exists(), "{} is missing: cargo build --release -p compliance-cli", ours.display());
    // An earlier build of ours, to show before and after in the same run.
    let before = std::env::var_os("COMPLIANCE_BIN_BEFORE").map(PathBuf::from);
    let checkov = checkov();
    let skip_checkov_over: usize =
        std::env::var("CHECKOV_MAX_WORKLOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    println!(
        "| workloads | YAML | compliance-rs (median of {runs}) | peak memory |{} Checkov | Checkov / compliance-rs |",
        if before.is_some() { " before (median) | before, peak memory |" } else { "" }
    );
    println!("|---:|---:|---:|---:|{}---:|---:|", if before.is_some() { "---:|---:|" } else { "" });
    for n in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).expect("folder");
        // The same documents the other benchmarks use, 100 to a file.
        let yaml_bytes = write_workloads(&manifests, n);
        let scan = |binary: &Path, r: usize| {
            let out = dir.path().join(format!("out-{r}"));
            let args = ["scan".as_ref(), "-q".as_ref(), "--k8s-manifests".as_ref(), manifests.as_os_str()];
            let args = [&args[..], &["--out".as_ref(), out.as_os_str()]].concat();
            let measured = timed(binary, &args, &dir.path().join("ours.log"));
            let _ = std::fs::remove_dir_all(&out);
            measured
        };
        let (ours_s, ours_mb) = median(runs, |r| scan(&ours, r));
        let before = before.as_ref().map(|b| median(runs, |r| scan(b, r)));
        let theirs = checkov.as_ref().filter(|_| n <= skip_checkov_over).map(|checkov| {
            let args: Vec<&std::ffi::OsStr> =
                ["--quiet", "--compact", "--framework", "kubernetes", "--output", "json", "-d"]
                    .iter()
                    .map(|a| a.as_ref())
                    .chain([manifests.as_os_str()])
                    .collect();
            timed(checkov, &args, &dir.path().join("checkov.json")).0
        });
        let before = before.map(|(s, mb)| format!(" {s:.3} s | {mb:.0} MB |")).unwrap_or_default();
        let (theirs, ratio) = match theirs {
            Some(t) => (format!("{t:.1} s"), format!("{:.0}x", t / ours_s)),
            None if checkov.is_some() => ("not run (CHECKOV_MAX_WORKLOADS)".to_owned(), String::new()),
            None => ("not installed".to_owned(), String::new()),
        };
        println!(
            "| {n} | {:.1} MB | {ours_s:.3} s | {ours_mb:.0} MB |{before} {theirs} | {ratio} |",
            yaml_bytes as f64 / 1e6
        );
    }
}
