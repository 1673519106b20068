//! CSV: one row per evidence.

use crate::model::Report;

pub(super) fn csv_rows(r: &Report, out: &mut dyn std::io::Write) -> Result<(), String> {
    let mut writer = csv::Writer::from_writer(out);
    let header = [
        "check_id",
        "status",
        "severity",
        "provider",
        "kind",
        "resource_id",
        "name",
        "namespace",
        "file",
        "line",
        "account",
        "region",
        "observed_at",
        "message",
        "remediation",
        "waiver_id",
    ];
    writer.write_record(header).map_err(|e| e.to_string())?;
    for e in &r.evidence {
        let res = &e.resource;
        let line = res.line.map(|l| l.to_string()).unwrap_or_default();
        let observed = e.observed_at.to_rfc3339();
        writer
            .write_record([
                e.check_id.as_str(),
                e.status.as_str(),
                e.severity.as_str(),
                &res.provider,
                &res.kind,
                &res.id,
                &res.name,
                res.namespace.as_deref().unwrap_or_default(),
                res.file.as_deref().unwrap_or_default(),
                &line,
                res.account.as_deref().unwrap_or_default(),
                res.region.as_deref().unwrap_or_default(),
                &observed,
                &e.message,
                e.remediation.as_deref().unwrap_or_default(),
                e.waiver.as_ref().map(|w| w.id.as_str()).unwrap_or_default(),
            ])
            .map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())
}
