//! Signed reports: an envelope beside a scan's output files.

use compliance_attest::signed_report::{sign_files, verify_files};
use compliance_attest::{Keyring, Problem, SigningKey};

use crate::TestResult;

#[test]
fn a_signed_report_verifies_and_a_changed_or_removed_file_is_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let files: Vec<_> = ["compliance_report_1.json", "compliance_report_1.html", "compliance_report_1.sarif"]
        .iter()
        .map(|name| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("contents of {name}")).map(|()| path)
        })
        .collect::<Result<_, _>>()?;
    let key = SigningKey::generate()?;
    let envelope = sign_files(&files, "run-1", "compliance_report_1.dsse.json", &key)?;
    let keyring = Keyring::single(key.public_key().clone());
    let signed = verify_files(&envelope, &keyring)?.map_err(|p| p.to_string())?;
    assert_eq!((signed.files.len(), signed.run_id.as_str()), (3, "run-1"));

    std::fs::write(&files[1], "contents changed")?;
    assert!(
        matches!(verify_files(&envelope, &keyring)?, Err(Problem::FileChanged { path, .. }) if path == "compliance_report_1.html")
    );
    std::fs::remove_file(&files[1])?;
    assert_eq!(
        verify_files(&envelope, &keyring)?.err(),
        Some(Problem::FileRemoved { path: "compliance_report_1.html".into() })
    );
    let stranger = Keyring::single(SigningKey::generate()?.public_key().clone());
    assert!(matches!(verify_files(&envelope, &stranger)?, Err(Problem::BadSignature { .. })));
    // Never overwritten.
    assert!(sign_files(&files[..1], "run-1", "compliance_report_1.dsse.json", &key).is_err());
    Ok(())
}
