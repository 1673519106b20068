//! JUnit XML: one test case per check and resource.

use std::borrow::Cow;
use std::collections::BTreeMap;

use compliance_core::{Evidence, Status};

use super::{escape, location};
use crate::model::Report;

fn xml_escape(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

pub(super) fn junit(r: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut by_check: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    for e in &r.evidence {
        by_check.entry(e.check_id.as_str()).or_default().push(e);
    }
    let count = |s: Status| r.evidence.iter().filter(|e| e.status == s).count();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"compliance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
        r.evidence.len(),
        count(Status::Fail),
        count(Status::Error),
        count(Status::NotApplicable),
        r.generated_at.to_rfc3339()
    )?;
    for (check, list) in by_check {
        let n = |s: Status| list.iter().filter(|e| e.status == s).count();
        let check = xml_escape(check);
        writeln!(
            out,
            "  <testsuite name=\"{check}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            list.len(),
            n(Status::Fail),
            n(Status::Error),
            n(Status::NotApplicable)
        )?;
        for e in list {
            write!(
                out,
                "    <testcase classname=\"{check}\" name=\"{}\" file=\"{}\">",
                xml_escape(&e.resource.id),
                xml_escape(&location(e))
            )?;
            match e.status {
                Status::Fail => {
                    let waived = e.waiver.as_ref().map(|w| format!(" (waived: {})", w.id)).unwrap_or_default();
                    write!(
                        out,
                        "<failure type=\"{}\" message=\"{}{}\">{}</failure>",
                        e.severity,
                        xml_escape(&e.message),
                        xml_escape(&waived),
                        xml_escape(e.remediation.as_deref().unwrap_or_default())
                    )?;
                }
                Status::Error => write!(out, "<error type=\"evidence-gap\" message=\"{}\"/>", xml_escape(&e.message))?,
                Status::NotApplicable => write!(out, "<skipped message=\"{}\"/>", xml_escape(&e.message))?,
                Status::Pass => {}
            }
            out.write_all(b"</testcase>\n")?;
        }
        out.write_all(b"  </testsuite>\n")?;
    }
    out.write_all(b"</testsuites>\n")
}
