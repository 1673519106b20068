//! `compliance evidence`: the stored history, and its verification.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use compliance_core::EvidenceStore;
use compliance_store::SqlStore;

use crate::UsageError;
use crate::args::{EvidenceCommand, ListFormat, StoreArg};

/// Opens the store a reading command names: it must exist, and nothing is
/// created or written (a misspelt path is an error, not a new empty store).
pub async fn open(store: &str) -> Result<SqlStore, UsageError> {
    SqlStore::open_read_only(store).await.map_err(|e| UsageError(format!("--store: {e}")))
}

/// Opens the store a command writes decisions to: it must exist.
pub async fn open_existing(store: &str) -> Result<SqlStore, UsageError> {
    SqlStore::open_with(store, compliance_store::OpenMode::Existing)
        .await
        .map_err(|e| UsageError(format!("--store: {e}")))
}

/// `2026-01-01` (midnight UTC) or an RFC 3339 time.
fn parse_time(flag: &str, text: &str) -> Result<DateTime<Utc>, UsageError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| UsageError(format!("--{flag} {text:?}: expected a date (2026-01-31) or an RFC 3339 time")))
}

fn print_evidence(evidence: &[compliance_core::Evidence], format: ListFormat) -> Result<(), UsageError> {
    match format {
        ListFormat::Json => {
            outln!("{}", serde_json::to_string_pretty(evidence).map_err(|e| UsageError(e.to_string()))?)
        }
        ListFormat::Text => {
            for e in evidence {
                outln!(
                    "{}  {:<14}  {:<40}  {}  {}",
                    e.observed_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    e.status.as_str(),
                    e.check_id.as_str(),
                    e.resource.id,
                    e.message
                );
            }
            outln!("{} evidence", evidence.len());
        }
    }
    Ok(())
}

pub async fn run(command: EvidenceCommand) -> Result<ExitCode, UsageError> {
    let query = |e: compliance_core::StoreError| UsageError(e.to_string());
    match command {
        EvidenceCommand::Export { store, framework, controls, from, to, out, sign_key, archive } => {
            let (from, to) = (parse_time("from", &from)?, parse_time("to", &to)?);
            let request = crate::attest::Export { framework, controls, from, to, out, sign_key, archive };
            crate::attest::export_package(&store, request).await
        }
        EvidenceCommand::VerifyPackage { dir, public_key, checkpoints, require_checkpoints, format } => {
            crate::attest::verify_package_command(
                &dir,
                &public_key,
                checkpoints.as_deref(),
                require_checkpoints,
                format,
            )
        }
        EvidenceCommand::Verify { store: StoreArg { store, format }, public_key, checkpoints } => {
            // Keys and copies first: a typo should not wait for a long walk.
            let keyring = public_key.as_deref().map(crate::attest::keyring).transpose()?;
            let copies = match &checkpoints {
                Some(path) => compliance_attest::checkpoint::read_checkpoint_file(path)
                    .map_err(|e| UsageError(format!("--checkpoints: {e}")))?,
                None => Vec::new(),
            };
            let opened = match SqlStore::open_read_only(&store).await {
                // A file that is no longer a database is tampering too, where it can be told.
                Err(e @ compliance_core::StoreError::Damaged { .. }) => {
                    outln!("TAMPERED: {e}");
                    return Ok(ExitCode::from(1));
                }
                other => other.map_err(|e| UsageError(format!("--store: {e}")))?,
            };
            let report = opened.verify().await.map_err(query)?;
            if report.records == 0 && report.is_intact() {
                // Nothing to verify is not an intact chain.
                outln!("no chain to verify: the store at {} holds no records", compliance_store::redact_url(&store));
                return Ok(ExitCode::from(1));
            }
            let signed = match (&keyring, report.is_intact()) {
                (Some(keyring), true) => Some(
                    compliance_attest::checkpoint::verify_checkpoints(&opened, keyring, &copies)
                        .await
                        .map_err(query)?,
                ),
                _ => None,
            };
            let signed_problem = signed.as_ref().and_then(|s| s.problem.as_ref());
            match format {
                ListFormat::Json => {
                    let value = serde_json::json!({ "chain": report, "checkpoints": signed,
                        "checkpoint_problem": signed_problem.map(ToString::to_string) });
                    outln!("{}", serde_json::to_string_pretty(&value).map_err(|e| UsageError(e.to_string()))?)
                }
                ListFormat::Text => match &report.problem {
                    None => {
                        outln!(
                            "chain intact: {} records, {} runs; head {} {}",
                            report.records,
                            report.runs,
                            report.head.seq,
                            report.head.hash
                        );
                        match (&signed, signed_problem) {
                            (_, Some(problem)) => outln!("TAMPERED: {problem}"),
                            (Some(s), None) => outln!(
                                "checkpoints verified: {} in the chain, {} copies from outside{}; signed through record {} ({} records since, not yet signed)",
                                s.in_chain,
                                s.external,
                                if s.pruned > 0 { format!(" ({} of pruned records)", s.pruned) } else { String::new() },
                                s.attested_through,
                                s.unattested()
                            ),
                            (None, None) => {}
                        }
                    }
                    Some(problem) => {
                        let seq = problem.seq();
                        outln!("TAMPERED: {problem}");
                        outln!("{} records verified before record {seq}", report.records);
                    }
                },
            }
            Ok(if report.is_intact() && signed_problem.is_none() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        EvidenceCommand::Runs { store: StoreArg { store, format }, from, to } => {
            let from = from.map(|f| parse_time("from", &f)).transpose()?;
            let to = to.map(|t| parse_time("to", &t)).transpose()?;
            let runs = open(&store).await?.runs(from, to).await.map_err(query)?;
            match format {
                ListFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&runs).map_err(|e| UsageError(e.to_string()))?)
                }
                ListFormat::Text => {
                    for r in &runs {
                        outln!(
                            "{}  {}  {:<8} {:>7} evidence {:>6} failures {:>4} gaps",
                            r.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
                            r.id,
                            r.source,
                            r.evidence,
                            r.failures,
                            r.gaps
                        );
                    }
                    outln!("{} runs", runs.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Latest(StoreArg { store, format }) => {
            print_evidence(&open(&store).await?.latest().await.map_err(query)?, format)?;
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::History { store, resource } => {
            print_evidence(&open(&store.store).await?.history(&resource).await.map_err(query)?, store.format)?;
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Control { store, framework, control, from, to } => {
            let (from, to) = (parse_time("from", &from)?, parse_time("to", &to)?);
            let evidence =
                open(&store.store).await?.control_evidence(&framework, &control, from, to).await.map_err(query)?;
            print_evidence(&evidence, store.format)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
