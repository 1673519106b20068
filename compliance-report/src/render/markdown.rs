//! Markdown, for people and pull requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use compliance_core::Evidence;

use super::{
    PEOPLE_REPORT_MAX_FAILURES, failures_for_people, location, target_scores, targets_for_people, unjudged_for_people,
};
use crate::model::{ControlStatus, Report};

/// Text as Markdown shows it, never as markup: raw HTML (`<`, `>`, `&`) is
/// escaped as entities, table cells keep their `|`, and a line break cannot
/// start a new block.
fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Compliance report\n");
    let _ = writeln!(
        out,
        "Run `{}`, {} to {} (UTC). Report schema {}.\n",
        r.run_id,
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.finished_at.format("%Y-%m-%d %H:%M:%S"),
        r.schema_version
    );
    let _ = writeln!(
        out,
        "**{:.1}% compliant**: {} of {} judged evidence pass; {} fail ({} waived), {} could not be judged, {} not applicable; {} gaps.\n",
        r.compliance_percentage,
        r.compliant,
        r.compliant + r.non_compliant,
        r.non_compliant,
        r.waived,
        r.errors,
        r.not_applicable,
        r.gaps.len()
    );
    let (targets, left_out) = targets_for_people(r);
    if !targets.is_empty() {
        let _ = writeln!(
            out,
            "## Targets\n\nWorst first.\n\n| target | name | passed | failed | waived | errors | gaps | scores |\n|---|---|---|---|---|---|---|---|"
        );
        for t in targets {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                md_escape(&t.id),
                md_escape(t.name.as_deref().unwrap_or_default()),
                t.passed,
                t.failed,
                t.waived,
                t.errors,
                t.gaps,
                target_scores(t)
            );
        }
        if left_out > 0 {
            let _ = writeln!(out, "\n{left_out} more targets, none worse than these: the JSON report lists them all.");
        }
        out.push('\n');
    }
    if !r.frameworks.is_empty() {
        let _ = writeln!(
            out,
            "## Frameworks\n\n| framework | score | passed | failed | waived | unknown | not assessed |\n|---|---|---|---|---|---|---|"
        );
        for f in &r.frameworks {
            let n = |s: ControlStatus| f.controls.iter().filter(|c| c.status == s).count();
            let score = f.score_percentage.map_or("n/a".to_owned(), |s| format!("{s:.1}%"));
            let _ = writeln!(
                out,
                "| {} {} | {score} | {} | {} | {} | {} | {} |",
                md_escape(&f.name),
                md_escape(&f.version),
                n(ControlStatus::Pass),
                n(ControlStatus::Fail),
                n(ControlStatus::Waived),
                n(ControlStatus::Unknown),
                n(ControlStatus::NotAssessed)
            );
        }
        for f in &r.frameworks {
            let failing: Vec<_> = f.controls.iter().filter(|c| c.status == ControlStatus::Fail).collect();
            if failing.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n### Failing controls: {}\n", md_escape(&f.name));
            for c in failing {
                let _ = writeln!(out, "- **{}** {} ({} failing evidence)", c.id, md_escape(&c.title), c.failed);
            }
        }
    }
    if !r.check_results.is_empty() {
        let _ = writeln!(
            out,
            "\n## Checks\n\n| check | score | pass | fail | waived | not judged | n/a |\n|---|---|---|---|---|---|---|"
        );
        for c in &r.check_results {
            let score = c.score_percentage.map_or("n/a".to_owned(), |s| format!("{s:.1}%"));
            let _ = writeln!(
                out,
                "| `{}` | {score} | {} | {} | {} | {} | {} |",
                c.check_id, c.passed, c.failed, c.waived, c.errors, c.not_applicable
            );
        }
    }
    let (shown, left_out) = failures_for_people(r);
    let mut by_check: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
    for e in shown {
        by_check.entry(e.check_id.as_str()).or_default().push(e);
    }
    if !by_check.is_empty() {
        let _ = writeln!(out, "\n## Failures\n");
        if left_out > 0 {
            let _ = writeln!(
                out,
                "The {} most severe failures; {left_out} more are in the JSON and CSV reports.\n",
                PEOPLE_REPORT_MAX_FAILURES
            );
        }
        for (check, list) in &by_check {
            let title = list.first().and_then(|e| r.check(e)).map(|c| c.title.as_str()).unwrap_or_default();
            let _ = writeln!(out, "### `{check}` ({}): {}\n", list[0].severity, md_escape(title));
            if let Some(fix) = list[0].remediation.as_deref() {
                let _ = writeln!(out, "Fix: {}\n", md_escape(fix));
            }
            let _ = writeln!(out, "| resource | where | finding | waiver |\n|---|---|---|---|");
            for e in list {
                let waiver = e
                    .waiver
                    .as_ref()
                    .map(|w| format!("{} ({}, until {})", w.id, w.owner, w.expires.format("%Y-%m-%d")))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} {} | {} | {} | {} |",
                    e.resource.kind,
                    md_escape(&e.resource.name),
                    md_escape(&location(e)),
                    md_escape(&e.message),
                    md_escape(&waiver)
                );
            }
            out.push('\n');
        }
    }
    if !r.gaps.is_empty() || r.errors > 0 {
        let _ = writeln!(out, "## Evidence gaps\n\nNot judged, and not counted as compliant.\n");
        for g in &r.gaps {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                g.collector,
                g.source.as_deref().unwrap_or("(whole collector)"),
                md_escape(&g.reason)
            );
        }
        let (unjudged, more) = unjudged_for_people(r);
        if more > 0 {
            let _ = writeln!(out, "- and {more} more unjudged evidence: see the JSON and CSV reports");
        }
        for e in unjudged {
            let _ = writeln!(out, "- `{}` on {}: {}", e.check_id, md_escape(&e.resource.id), md_escape(&e.message));
        }
    }
    for x in &r.expired_waivers {
        let _ = writeln!(
            out,
            "\nWaiver {} expired on {}: {} failures are no longer waived.",
            x.waiver.id,
            x.waiver.expires.format("%Y-%m-%d"),
            x.failures_no_longer_waived
        );
    }
    out
}
