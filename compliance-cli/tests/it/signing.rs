//! Signed evidence from the command line: keys, a monitor that signs its
//! chain, an evidence package exported and verified offline, a signed scan
//! report; and each kind of tampering caught with exit 1.

use std::path::Path;

use crate::support::{compliance, free_port, text};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn generate(dir: &Path, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let out = dir.join(name);
    let made = compliance(&["keys", "generate", "--out", out.to_str().ok_or("path")?]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let fingerprint = text(&made.stdout).lines().find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_owned));
    fingerprint.ok_or_else(|| "no fingerprint printed".into())
}

/// A signed monitor's store after two cycles, with its checkpoint copies.
fn signed_history(dir: &Path) -> Result<(String, String), Box<dyn std::error::Error>> {
    generate(dir, "monitor")?;
    let store = format!("sqlite://{}", dir.join("evidence.db").display());
    let config = dir.join("monitor.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  k8s_manifests: [examples/manifests]\n  frameworks: [soc2]\ninterval: 1s\nstore: {store}\nlisten: 127.0.0.1:{}\nsigning:\n  key: {}\n  checkpoints_file: {}\n",
            free_port()?,
            dir.join("monitor.key").display(),
            dir.join("checkpoints.jsonl").display()
        ),
    )?;
    let run = compliance(&["monitor", "--config", config.to_str().ok_or("path")?, "--cycles", "2"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("signing checkpoints with key"), "{}", text(&run.stderr));
    Ok((store, dir.join("monitor.pub").display().to_string()))
}

#[test]
fn keys_are_pem_files_with_a_private_mode_and_never_overwritten() -> TestResult {
    let dir = tempfile::tempdir()?;
    let fingerprint = generate(dir.path(), "k")?;
    for file in ["k.key", "k.pub"] {
        let printed = compliance(&["keys", "fingerprint", dir.path().join(file).to_str().ok_or("path")?]);
        assert_eq!(text(&printed.stdout).trim(), fingerprint);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.path().join("k.key"))?.permissions().mode() & 0o777, 0o600);
    }
    let again = compliance(&["keys", "generate", "--out", dir.path().join("k").to_str().ok_or("path")?]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("k.key: File exists"), "{}", text(&again.stderr));
    let not_a_key = compliance(&["keys", "fingerprint", "rustfmt.toml"]);
    assert_eq!(not_a_key.status.code(), Some(2));
    assert!(text(&not_a_key.stderr).contains("rustfmt.toml: not PEM"), "{}", text(&not_a_key.stderr));
    Ok(())
}

#[test]
fn a_signed_monitor_chain_verifies_with_its_key_and_not_with_another() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, public) = signed_history(dir.path())?;
    let copies = dir.path().join("checkpoints.jsonl");
    assert_eq!(std::fs::read_to_string(&copies)?.lines().count(), 2, "one checkpoint copy per run");
    let verify = compliance(&[
        "evidence",
        "verify",
        "--store",
        &store,
        "--public-key",
        &public,
        "--checkpoints",
        copies.to_str().ok_or("path")?,
    ]);
    let stdout = text(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{stdout}{}", text(&verify.stderr));
    assert!(stdout.contains("checkpoints verified: 2 in the chain, 2 copies from outside"), "{stdout}");
    assert!(stdout.contains("(0 records since, not yet signed)"), "{stdout}");

    generate(dir.path(), "stranger")?;
    let stranger = dir.path().join("stranger.pub");
    let verify =
        compliance(&["evidence", "verify", "--store", &store, "--public-key", stranger.to_str().ok_or("path")?]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(text(&verify.stdout).contains("TAMPERED: chain record"), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("the signature does not verify"), "{}", text(&verify.stdout));
    Ok(())
}

#[test]
fn an_exported_package_verifies_offline_and_a_changed_file_is_caught() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, public) = signed_history(dir.path())?;
    let package = dir.path().join("package");
    let package_arg = package.to_str().ok_or("path")?;
    let key = dir.path().join("monitor.key");
    let export = compliance(&[
        "evidence",
        "export",
        "--store",
        &store,
        "--framework",
        "soc2",
        "--control",
        "CC6.1",
        "--from",
        "2026-01-01",
        "--to",
        "2100-01-01",
        "--out",
        package_arg,
        "--sign-key",
        key.to_str().ok_or("path")?,
    ]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    assert!(text(&export.stdout).contains("(2 runs, "), "{}", text(&export.stdout));

    let verify = compliance(&["evidence", "verify-package", package_arg, "--public-key", &public]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(text(&verify.stdout).starts_with("verified: soc2 framework, 2 runs, "), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("2 checkpoints verified"), "{}", text(&verify.stdout));
    let copies = dir.path().join("checkpoints.jsonl");
    let strict = compliance(&[
        "evidence",
        "verify-package",
        package_arg,
        "--public-key",
        &public,
        "--checkpoints",
        copies.to_str().ok_or("path")?,
        "--require-checkpoints",
    ]);
    assert_eq!(strict.status.code(), Some(0), "{}", text(&strict.stdout));

    // The same package as one file: unpacked elsewhere, it verifies the same.
    let archive = dir.path().join("package.tar.gz");
    let again = compliance(&[
        "evidence",
        "export",
        "--store",
        &store,
        "--framework",
        "soc2",
        "--control",
        "CC6.1",
        "--from",
        "2026-01-01",
        "--to",
        "2100-01-01",
        "--out",
        dir.path().join("again").to_str().ok_or("path")?,
        "--sign-key",
        key.to_str().ok_or("path")?,
        "--archive",
        archive.to_str().ok_or("path")?,
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked)?;
    let tar = std::process::Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&unpacked).output()?;
    assert!(tar.status.success(), "{}", text(&tar.stderr));
    let verify = compliance(&[
        "evidence",
        "verify-package",
        unpacked.join("again").to_str().ok_or("path")?,
        "--public-key",
        &public,
    ]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));

    let control = package.join("controls/soc2/CC6.1.json");
    let mut edited = std::fs::read_to_string(&control)?;
    edited = edited.replacen("\"fail\"", "\"pass\"", 1);
    std::fs::write(&control, edited)?;
    let verify = compliance(&["evidence", "verify-package", package_arg, "--public-key", &public, "--format", "json"]);
    assert_eq!(verify.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&verify.stdout)?;
    assert_eq!(answer["verified"], false);
    assert_eq!(answer["problem"]["problem"], "file_changed");
    assert_eq!(answer["problem"]["path"], "controls/soc2/CC6.1.json");

    // A period without runs, and a key that is not there, are usage errors.
    let empty = compliance(&[
        "evidence",
        "export",
        "--store",
        &store,
        "--framework",
        "soc2",
        "--from",
        "2001-01-01",
        "--to",
        "2002-01-01",
        "--out",
        dir.path().join("empty").to_str().ok_or("path")?,
    ]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty.stderr).contains("no run started between"), "{}", text(&empty.stderr));
    let no_key = compliance(&[
        "evidence",
        "export",
        "--store",
        &store,
        "--framework",
        "soc2",
        "--from",
        "2026-01-01",
        "--to",
        "2100-01-01",
        "--out",
        dir.path().join("p2").to_str().ok_or("path")?,
        "--sign-key",
        "missing.key",
    ]);
    assert_eq!(no_key.status.code(), Some(2));
    assert!(text(&no_key.stderr).contains("--sign-key: missing.key: No such file"), "{}", text(&no_key.stderr));
    Ok(())
}

#[test]
fn a_signed_scan_report_verifies_and_an_edited_one_does_not() -> TestResult {
    let dir = tempfile::tempdir()?;
    generate(dir.path(), "ci")?;
    let out = dir.path().join("reports");
    let scan = compliance(&[
        "scan",
        "--k8s-manifests",
        "examples/manifests",
        "--format",
        "json",
        "--format",
        "html",
        "--format",
        "sarif",
        "--out",
        out.to_str().ok_or("path")?,
        "--sign-key",
        dir.path().join("ci.key").to_str().ok_or("path")?,
        "--quiet",
    ]);
    assert_eq!(scan.status.code(), Some(0), "{}", text(&scan.stderr));
    let envelope = text(&scan.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("signed: ").and_then(|r| r.split(" (key").next()).map(str::to_owned))
        .ok_or("no envelope")?;
    let public = dir.path().join("ci.pub");
    let verify = compliance(&["report", "verify", &envelope, "--public-key", public.to_str().ok_or("path")?]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).starts_with("verified: 3 files of run "), "{}", text(&verify.stdout));

    let sarif = std::fs::read_dir(&out)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sarif"))
        .ok_or("no sarif")?;
    std::fs::write(&sarif, b"{}")?;
    let verify = compliance(&["report", "verify", &envelope, "--public-key", public.to_str().ok_or("path")?]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(text(&verify.stdout).starts_with("NOT VERIFIED: compliance_report_"), "{}", text(&verify.stdout));
    Ok(())
}
