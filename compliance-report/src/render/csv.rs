//! CSV: one row per evidence, with its account, region and cluster (the
//! cluster column is last: columns keep their positions across versions). A cell that a spreadsheet would take for a
//! formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage return)
//! gets a leading apostrophe, as OWASP advises against CSV injection.

use std::borrow::Cow;

use crate::model::Report;

/// The cell as text a spreadsheet shows and never evaluates.
fn cell(text: &str) -> Cow<'_, [u8]> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}").into_bytes())
    } else {
        Cow::Borrowed(text.as_bytes())
    }
}

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
        "cluster",
    ];
    writer.write_record(header).map_err(|e| e.to_string())?;
    for e in &r.evidence {
        let res = &e.resource;
        let line = res.line.map(|l| l.to_string()).unwrap_or_default();
        let observed = e.observed_at.to_rfc3339();
        writer
            .write_record(
                [
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
                    res.cluster.as_deref().unwrap_or_default(),
                ]
                .map(cell),
            )
            .map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_shown_not_evaluated() {
        for bad in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(bad).starts_with(b"'"), "{bad}");
        }
        assert_eq!(cell("k8s.pod.run_as_non_root").as_ref(), b"k8s.pod.run_as_non_root");
    }
}
