//! Our envelopes, verified by an implementation that is not ours:
//! securesystemslib 1.6.0 (the in-toto project's library) for DSSE and
//! Ed25519, Python's hashlib for the digests.

use std::path::PathBuf;
use std::process::Command;

use compliance_attest::SigningKey;

use crate::{TestResult, export_all, store_with_history};

fn python() -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::env::var_os("COMPLIANCE_TOOLS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let venv = PathBuf::from(home).join(".cache/compliance-rs/tools-venv/bin/python");
            venv.is_file().then_some(venv)
        })
        .ok_or_else(|| {
            "securesystemslib is not installed: scripts/test installs it (or set COMPLIANCE_TOOLS_PYTHON)".into()
        })
}

#[tokio::test]
#[ignore = "needs securesystemslib (tools venv): scripts/test installs it"]
async fn securesystemslib_verifies_our_package_envelope_and_refuses_a_changed_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, framework, checks) = store_with_history().await?;
    let key = SigningKey::generate()?;
    export_all(&store, &framework, &checks, &dir.path().join("package"), Some(&key)).await?;
    // The key as OpenSSL would hold it: PEM files on disk.
    std::fs::write(dir.path().join("key.pub"), key.public_key().to_pem())?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/verify_with_securesystemslib.py");
    let python = python()?;
    let run = || -> Result<std::process::Output, std::io::Error> {
        Command::new(&python)
            .arg(&script)
            .arg(dir.path().join("package/package.dsse.json"))
            .arg(dir.path().join("key.pub"))
            .output()
    };
    let out = run()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("verified: 15 subjects"), "{stdout}");

    std::fs::write(dir.path().join("package/waivers.json"), b"[]")?;
    let out = run()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("waivers.json: sha256"));

    // A different key: securesystemslib refuses the signature.
    std::fs::write(dir.path().join("key.pub"), SigningKey::generate()?.public_key().to_pem())?;
    let out = run()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("signature:"));
    Ok(())
}
