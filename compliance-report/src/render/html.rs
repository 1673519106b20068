//! A self-contained HTML page.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{escape, failures_for_people, location, unjudged_for_people};
use crate::model::{ControlStatus, Report};

fn html_escape(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

pub(super) fn html(r: &Report) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Compliance report</h1><p class=meta>Run <code>{}</code> &middot; {} to {} UTC &middot; schema {}</p>",
        r.run_id,
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.finished_at.format("%Y-%m-%d %H:%M:%S"),
        html_escape(&r.schema_version)
    );
    let _ = write!(
        body,
        "<section class=summary><div class=big>{:.1}%</div><div>{} of {} judged evidence compliant<br>{} failing ({} waived) &middot; {} not judged &middot; {} not applicable &middot; {} gaps</div></section>",
        r.compliance_percentage,
        r.compliant,
        r.compliant + r.non_compliant,
        r.non_compliant,
        r.waived,
        r.errors,
        r.not_applicable,
        r.gaps.len()
    );
    let (targets, left_out) = super::targets_for_people(r);
    if !targets.is_empty() {
        body.push_str("<h2>Targets</h2><p class=meta>Worst first.</p><table><tr><th>target</th><th>name</th><th>pass</th><th>fail</th><th>waived</th><th>errors</th><th>gaps</th><th>scores</th></tr>");
        for t in targets {
            let class = if t.failed > 0 {
                "fail"
            } else if t.errors + t.gaps > 0 {
                "unknown"
            } else {
                "pass"
            };
            let _ = write!(
                body,
                "<tr class={class}><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html_escape(&t.id),
                html_escape(t.name.as_deref().unwrap_or_default()),
                t.passed,
                t.failed,
                t.waived,
                t.errors,
                t.gaps,
                html_escape(&super::target_scores(t))
            );
        }
        body.push_str("</table>");
        if left_out > 0 {
            let _ = write!(
                body,
                "<p class=meta>{left_out} more targets, none worse than these: the JSON report lists them all.</p>"
            );
        }
    }
    if !r.frameworks.is_empty() {
        body.push_str("<h2>Frameworks</h2><p class=meta>Score: passed controls over assessed controls. Bars: assessed controls that passed, are waived, failed, or could not be judged.</p><div class=bars>");
        for f in &r.frameworks {
            let label = f.score_percentage.map_or("not assessed".to_owned(), |s| format!("{s:.1}%"));
            let n = |s: ControlStatus| f.controls.iter().filter(|c| c.status == s).count();
            let assessed = f.controls.len() - n(ControlStatus::NotAssessed);
            let mut segments = String::new();
            for (status, class) in [
                (ControlStatus::Pass, "pass"),
                (ControlStatus::Waived, "waived"),
                (ControlStatus::Fail, "fail"),
                (ControlStatus::Unknown, "unknown"),
            ] {
                let count = n(status);
                if count > 0 && assessed > 0 {
                    let width = count as f64 * 100.0 / assessed as f64;
                    let _ = write!(
                        segments,
                        "<span class=\"seg {class}\" style=\"width:{width:.1}%\" title=\"{count} {class}\"></span>"
                    );
                }
            }
            let _ = write!(
                body,
                "<div class=bar><span class=name>{} {}</span><span class=track>{segments}</span><span class=value>{label}</span></div>",
                html_escape(&f.name),
                html_escape(&f.version)
            );
        }
        body.push_str("</div>");
        for f in &r.frameworks {
            let _ = write!(
                body,
                "<details><summary>{} controls</summary><table><tr><th>control</th><th>title</th><th>status</th><th>pass</th><th>fail</th><th>waived</th><th>errors</th></tr>",
                html_escape(&f.name)
            );
            for c in &f.controls {
                let _ = write!(
                    body,
                    "<tr class={}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    c.status.as_str(),
                    html_escape(&c.id),
                    html_escape(&c.title),
                    c.status.as_str(),
                    c.passed,
                    c.failed,
                    c.waived,
                    c.errors
                );
            }
            body.push_str("</table></details>");
        }
    }
    let (shown, left_out) = failures_for_people(r);
    if !shown.is_empty() {
        body.push_str("<h2>Failures</h2>");
        if left_out > 0 {
            let _ = write!(
                body,
                "<p class=meta>The {} most severe of {} failures; the JSON and CSV reports list all of them.</p>",
                shown.len(),
                shown.len() + left_out
            );
        }
        body.push_str("<table><tr><th>severity</th><th>check</th><th>resource</th><th>where</th><th>finding</th><th>fix</th><th>waiver</th></tr>");
        for e in shown {
            let waiver = e.waiver.as_ref().map(|w| format!("{} ({})", w.id, w.owner)).unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td class=sev-{}>{}</td><td><code>{}</code></td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.severity,
                e.severity,
                e.check_id,
                html_escape(&e.resource.kind),
                html_escape(&e.resource.name),
                html_escape(&location(e)),
                html_escape(&e.message),
                html_escape(e.remediation.as_deref().unwrap_or_default()),
                html_escape(&waiver)
            );
        }
        body.push_str("</table>");
    }
    if !r.gaps.is_empty() || r.errors > 0 {
        body.push_str("<h2>Evidence gaps</h2><p>Not judged, and not counted as compliant.</p><ul>");
        for g in &r.gaps {
            let _ = write!(
                body,
                "<li>{} {}: {}</li>",
                html_escape(&g.collector),
                html_escape(g.source.as_deref().unwrap_or("(whole collector)")),
                html_escape(&g.reason)
            );
        }
        let (unjudged, more) = unjudged_for_people(r);
        if more > 0 {
            let _ = write!(body, "<li>and {more} more unjudged evidence: see the JSON and CSV reports</li>");
        }
        for e in unjudged {
            let _ = write!(
                body,
                "<li><code>{}</code> on {}: {}</li>",
                e.check_id,
                html_escape(&e.resource.id),
                html_escape(&e.message)
            );
        }
        body.push_str("</ul>");
    }
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Compliance report {}</title><style>{CSS}</style></head><body>{body}</body></html>\n",
        r.run_id
    )
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2430;padding:0 1rem}h1{margin-bottom:.2rem}.meta{color:#5b6678}\
.summary{display:flex;gap:1.5rem;align-items:center;background:#f3f5f8;border-radius:8px;padding:1rem 1.5rem}.big{font-size:2.6rem;font-weight:700}\
.bars{display:grid;gap:.5rem;margin:1rem 0}.bar{display:grid;grid-template-columns:18rem 1fr 6rem;gap:.75rem;align-items:center}.track{background:#e3e7ee;border-radius:4px;height:1rem;display:flex;overflow:hidden}\
.seg{height:1rem;display:inline-block}.seg.pass{background:#2f8f5b}.seg.waived{background:#d89c2b}.seg.fail{background:#c0392b}.seg.unknown{background:#98a2b3}.value{font-variant-numeric:tabular-nums}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}\
th,td{border-bottom:1px solid #e3e7ee;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f3f5f8;overflow-wrap:normal}td:first-child{white-space:nowrap}tr.fail td:nth-child(3){color:#b42318;font-weight:600}\
tr.pass td:nth-child(3){color:#2f8f5b}.sev-critical,.sev-high{color:#b42318;font-weight:600}.sev-medium{color:#b54708}code{font-size:.9em}details{margin:.5rem 0}";
