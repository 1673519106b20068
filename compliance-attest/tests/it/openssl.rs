//! Keys in the forms OpenSSL reads and writes, both ways.

use std::process::Command;

use compliance_attest::{Keyring, PublicKey, SigningKey};

use crate::TestResult;

fn openssl(args: &[&str]) -> Result<std::process::Output, Box<dyn std::error::Error>> {
    let out =
        Command::new("openssl").args(args).output().map_err(|e| format!("openssl: {e} (scripts/test installs it)"))?;
    if !out.status.success() {
        return Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(out)
}

#[test]
#[ignore = "needs openssl: scripts/test installs it"]
fn a_key_made_by_openssl_signs_and_openssl_verifies_our_signature_and_fingerprint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", &path("openssl.key")])?;
    openssl(&["pkey", "-in", &path("openssl.key"), "-pubout", "-out", &path("openssl.pub")])?;
    let key = SigningKey::read(path("openssl.key"))?;
    let public = PublicKey::read(path("openssl.pub"))?;
    assert_eq!(key.fingerprint(), public.fingerprint());

    // The fingerprint is what `openssl pkey -pubin -outform DER | sha256sum` gives.
    let der = openssl(&["pkey", "-pubin", "-in", &path("openssl.pub"), "-outform", "DER"])?.stdout;
    assert_eq!(public.fingerprint(), compliance_attest::sha256_hex(&der));

    // OpenSSL verifies what we sign (Ed25519 signs the message itself: -rawin).
    std::fs::write(path("message"), b"chain head 42")?;
    std::fs::write(path("message.sig"), key.sign(b"chain head 42"))?;
    openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        &path("openssl.pub"),
        "-rawin",
        "-in",
        &path("message"),
        "-sigfile",
        &path("message.sig"),
    ])?;

    // And reads the pair we write.
    let ours = SigningKey::generate()?;
    ours.write_pair(&dir.path().join("ours.key"), &dir.path().join("ours.pub"))?;
    let text = String::from_utf8(openssl(&["pkey", "-in", &path("ours.key"), "-pubout"])?.stdout)?;
    assert_eq!(PublicKey::from_pem(&text, "openssl")?.fingerprint(), ours.fingerprint());
    assert_eq!(Keyring::read(path("ours.pub"))?.keys().count(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(path("ours.key"))?.permissions().mode() & 0o777, 0o600);
    }
    Ok(())
}
