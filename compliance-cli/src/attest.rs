//! Signing and offline verification: `keys`, `evidence export`,
//! `evidence verify-package`, `report verify`, and the checkpoint part of
//! `evidence verify`.

use std::path::Path;
use std::process::ExitCode;

use compliance_attest::package::{ExportRequest, VerifyOptions, export, verify_package_with};
use compliance_attest::signed_report::{sign_files, verify_files};
use compliance_attest::{Keyring, PublicKey, SigningKey};

use crate::UsageError;
use crate::args::{KeysCommand, ListFormat, ReportCommand};

fn usage(flag: &str) -> impl Fn(compliance_attest::AttestError) -> UsageError + '_ {
    move |e| UsageError(format!("{flag}: {e}"))
}

/// Reads `--sign-key`.
pub fn signing_key(path: &Path) -> Result<SigningKey, UsageError> {
    SigningKey::read(path).map_err(usage("--sign-key"))
}

/// Reads `--public-key`: one PEM key, or a keyring.
pub fn keyring(path: &Path) -> Result<Keyring, UsageError> {
    Keyring::read(path).map_err(usage("--public-key"))
}

pub fn keys(command: KeysCommand) -> Result<ExitCode, UsageError> {
    match command {
        KeysCommand::Generate { out } => {
            let key = SigningKey::generate().map_err(usage("keys generate"))?;
            let (private, public) = (out.with_extension("key"), out.with_extension("pub"));
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| UsageError(format!("{}: {e}", parent.display())))?;
            }
            key.write_pair(&private, &public).map_err(usage("--out"))?;
            outln!("private key: {} (keep it secret)", private.display());
            outln!("public key:  {}", public.display());
            outln!("fingerprint: {}", key.fingerprint());
        }
        KeysCommand::Fingerprint { file } => {
            let text = compliance_attest::read_key_file(&file).map_err(|e| UsageError(e.to_string()))?;
            let name = file.display().to_string();
            let fingerprint = if text.contains("PRIVATE KEY") {
                SigningKey::from_pem(&text, &name).map(|k| k.fingerprint().to_owned())
            } else {
                PublicKey::from_pem(&text, &name).map(|k| k.fingerprint().to_owned())
            }
            .map_err(|e| UsageError(e.to_string()))?;
            outln!("{fingerprint}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn report(command: ReportCommand) -> Result<ExitCode, UsageError> {
    let ReportCommand::Verify { envelope, public_key } = command;
    let keyring = keyring(&public_key)?;
    match verify_files(&envelope, &keyring).map_err(|e| UsageError(e.to_string()))? {
        Ok(signed) => {
            outln!(
                "verified: {} files of run {}, signed by {} at {}",
                signed.files.len(),
                signed.run_id,
                signed.signed_by,
                signed.signed_at.to_rfc3339()
            );
            for file in &signed.files {
                outln!("  {file}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            outln!("NOT VERIFIED: {problem}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Signs a scan's report files with an envelope named after them.
pub fn sign_report(
    paths: &[std::path::PathBuf],
    run_id: &str,
    key: &SigningKey,
) -> Result<std::path::PathBuf, UsageError> {
    let stem = paths
        .first()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().split('.').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    sign_files(paths, run_id, &format!("{stem}.dsse.json"), key).map_err(usage("--sign-key"))
}

/// What `evidence export` was asked.
pub struct Export {
    pub framework: String,
    pub controls: Vec<String>,
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
    pub out: std::path::PathBuf,
    pub sign_key: Option<std::path::PathBuf>,
    pub archive: Option<std::path::PathBuf>,
}

pub async fn export_package(store: &str, asked: Export) -> Result<ExitCode, UsageError> {
    // The key first: a typo in its path should not cost an export.
    let key = asked.sign_key.as_deref().map(signing_key).transpose()?;
    let opened = crate::evidence::open(store).await?;
    let frameworks: Vec<std::sync::Arc<dyn compliance_core::Framework>> = compliance_report::builtin_frameworks();
    let request =
        ExportRequest::new(asked.framework, asked.from, asked.to, frameworks, compliance_rs::registry().checks())
            .with_controls(asked.controls);
    let summary = export(&opened, &request, &asked.out, key.as_ref()).await.map_err(|e| UsageError(e.to_string()))?;
    outln!(
        "package: {} ({} runs, {} evidence, {} controls, {} files, chain records {}..{})",
        summary.dir.display(),
        summary.runs,
        summary.evidence,
        summary.controls,
        summary.files,
        summary.chain.0,
        summary.chain.1
    );
    match &summary.signed_by {
        Some(key) => outln!("signed by {key}"),
        None => eprintln!("warning: not signed (no --sign-key): verify-package will refuse it"),
    }
    if let Some(file) = &asked.archive {
        compliance_attest::package::archive(&asked.out, file).map_err(|e| UsageError(format!("--archive: {e}")))?;
        outln!("archive: {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify_package_command(
    dir: &Path,
    public_key: &Path,
    checkpoints: Option<&Path>,
    require_checkpoints: bool,
    format: ListFormat,
) -> Result<ExitCode, UsageError> {
    let keyring = keyring(public_key)?;
    let mut options = VerifyOptions::default();
    if let Some(path) = checkpoints {
        let copies = compliance_attest::checkpoint::read_checkpoint_file(path)
            .map_err(|e| UsageError(format!("--checkpoints: {e}")))?;
        options = options.with_checkpoints(copies);
    }
    if require_checkpoints {
        options = options.requiring_checkpoints();
    }
    let verdict = verify_package_with(dir, &keyring, &options).map_err(|e| UsageError(e.to_string()))?;
    if format == ListFormat::Json {
        let value = match &verdict {
            Ok(report) => serde_json::json!({ "verified": true, "package": report }),
            Err(problem) => {
                serde_json::json!({ "verified": false, "problem": problem, "message": problem.to_string() })
            }
        };
        outln!("{}", serde_json::to_string_pretty(&value).map_err(|e| UsageError(e.to_string()))?);
    }
    match verdict {
        Ok(report) => {
            if format == ListFormat::Text {
                outln!(
                    "verified: {} framework, {} runs, {} files, {} chain records up to {} ({}), {} evidence found in the chain",
                    report.framework,
                    report.runs,
                    report.files,
                    report.chain_records,
                    report.head_seq,
                    report.head_hash,
                    report.evidence
                );
                outln!("signed by {} at {}", report.signed_by, report.signed_at.to_rfc3339());
                match report.checkpoints {
                    0 => outln!("no checkpoint in the chain segment: nothing ties it to what the monitor signed"),
                    n => outln!("{n} checkpoints verified; signed through record {}", report.attested_through),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            if format == ListFormat::Text {
                outln!("TAMPERED: {problem}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
