//! Monitoring artifacts, generated from one set of metric names so they
//! cannot drift apart: the Prometheus exposition of a report, Prometheus
//! alert rules (violation, drift and stale evidence, plus evidence gaps), and a Grafana
//! dashboard.

use std::collections::BTreeMap;

use compliance_core::Status;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::model::Report;

/// Overall compliance percentage (no label), and per framework (`framework`).
pub const SCORE: &str = "compliance_score_percentage";
/// Unwaived failing resources per check (`check`, `severity`).
pub const CHECK_FAILED: &str = "compliance_check_failed";
/// Unwaived failures observed, a counter: exported as
/// `compliance_violations_total` (prometheus-client adds the suffix).
pub const VIOLATIONS: &str = "compliance_violations";
/// Unix time of the newest evidence per collector (`collector`).
pub const LAST_EVIDENCE: &str = "compliance_last_evidence_timestamp";
/// Gaps and unjudged evidence per collector (`collector`).
pub const GAPS: &str = "compliance_evidence_gaps";
/// Evidence per status (`status`).
pub const EVIDENCE: &str = "compliance_evidence";
/// Controls per framework and result (`framework`, `status`).
pub const CONTROLS: &str = "compliance_controls";
/// Evidence per AWS account or Kubernetes cluster and status (`account`,
/// `cluster`, `status`); regions are summed into their account, and no
/// label names a resource, so the series stay few.
pub const TARGET_EVIDENCE: &str = "compliance_target_evidence";
/// Gaps per AWS account or Kubernetes cluster (`account`, `cluster`).
pub const TARGET_GAPS: &str = "compliance_target_gaps";
/// Score per AWS account or Kubernetes cluster and framework (`account`, `cluster`, `framework`).
pub const TARGET_SCORE: &str = "compliance_target_score_percentage";

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The Prometheus text exposition of a report. `violations_total` is the
/// counter's value: for one report, its unwaived failures; a long-running
/// monitor passes the sum over its runs.
pub fn exposition(report: &Report, violations_total: u64) -> Result<String, std::fmt::Error> {
    exposition_with_history(report, violations_total, &BTreeMap::new())
}

/// [`exposition`] for a long-running monitor: `last_evidence` holds, per
/// collector, the Unix time of its newest evidence in earlier runs, so a
/// collector that failed this run keeps its old timestamp and the
/// stale-evidence alert fires, instead of the series disappearing.
pub fn exposition_with_history(
    report: &Report,
    violations_total: u64,
    last_evidence: &BTreeMap<String, i64>,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let score: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
    score.get_or_create(&Vec::new()).set(report.compliance_percentage);
    for f in &report.frameworks {
        if let Some(s) = f.score_percentage {
            score.get_or_create(&labels(&[("framework", &f.id)])).set(s);
        }
    }
    registry.register(
        SCORE,
        "Compliant evidence over judged evidence (no label); passed over assessed controls (per framework)",
        score,
    );

    let failed: Family<Labels, Gauge> = Family::default();
    let mut by_check: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for c in &report.checks {
        by_check.entry((c.id.as_str(), c.severity.as_str())).or_insert(0);
    }
    for e in report.evidence.iter().filter(|e| e.is_unwaived_failure()) {
        *by_check.entry((e.check_id.as_str(), e.severity.as_str())).or_insert(0) += 1;
    }
    for ((check, severity), n) in &by_check {
        failed.get_or_create(&labels(&[("check", check), ("severity", severity)])).set(*n);
    }
    registry.register(CHECK_FAILED, "Resources failing the check, waived failures excluded", failed);

    let violations: Counter = Counter::default();
    violations.inc_by(violations_total);
    registry.register(VIOLATIONS, "Unwaived failures observed", violations);

    let last: Family<Labels, Gauge> = Family::default();
    let mut newest: BTreeMap<&str, i64> = last_evidence.iter().map(|(c, t)| (c.as_str(), *t)).collect();
    for e in &report.evidence {
        let t = e.observed_at.timestamp();
        let slot = newest.entry(&e.collector).or_insert(t);
        *slot = (*slot).max(t);
    }
    for (collector, t) in &newest {
        last.get_or_create(&labels(&[("collector", collector)])).set(*t);
    }
    registry.register(LAST_EVIDENCE, "Unix time of the newest evidence of the collector", last);

    let gaps: Family<Labels, Gauge> = Family::default();
    let mut per_collector: BTreeMap<&str, i64> = newest.keys().map(|c| (*c, 0)).collect();
    for g in &report.gaps {
        *per_collector.entry(&g.collector).or_insert(0) += 1;
    }
    for e in report.evidence.iter().filter(|e| e.status == Status::Error) {
        *per_collector.entry(&e.collector).or_insert(0) += 1;
    }
    for (collector, n) in &per_collector {
        gaps.get_or_create(&labels(&[("collector", collector)])).set(*n);
    }
    registry.register(GAPS, "Sources not read and evidence not judged", gaps);

    let evidence: Family<Labels, Gauge> = Family::default();
    for status in [Status::Pass, Status::Fail, Status::Error, Status::NotApplicable] {
        let n = report.evidence.iter().filter(|e| e.status == status).count();
        evidence.get_or_create(&labels(&[("status", status.as_str())])).set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    registry.register(EVIDENCE, "Evidence by status", evidence);

    let controls: Family<Labels, Gauge> = Family::default();
    for f in &report.frameworks {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for c in &f.controls {
            *counts.entry(c.status.as_str()).or_insert(0) += 1;
        }
        for (status, n) in counts {
            controls.get_or_create(&labels(&[("framework", &f.id), ("status", status)])).set(n);
        }
    }
    registry.register(CONTROLS, "Controls by framework and result", controls);

    let target_evidence: Family<Labels, Gauge> = Family::default();
    let target_gaps: Family<Labels, Gauge> = Family::default();
    let target_score: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
    for t in &report.targets {
        let (account, cluster) = match t.kind {
            compliance_core::TargetKind::AwsAccount => (t.id.trim_start_matches("aws:"), ""),
            compliance_core::TargetKind::K8sCluster => ("", t.id.trim_start_matches("k8s:")),
            _ => continue,
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        for (status, n) in [
            ("pass", t.passed),
            ("fail", t.failed + t.waived),
            ("error", t.errors),
            ("not_applicable", t.not_applicable),
        ] {
            target_evidence
                .get_or_create(&labels(&[("account", account), ("cluster", cluster), ("status", status)]))
                .set(count(n));
        }
        target_gaps.get_or_create(&labels(&[("account", account), ("cluster", cluster)])).set(count(t.gaps));
        for (framework, score) in &t.scores {
            target_score
                .get_or_create(&labels(&[("account", account), ("cluster", cluster), ("framework", framework)]))
                .set(*score);
        }
    }
    registry.register(TARGET_EVIDENCE, "Evidence by AWS account or Kubernetes cluster, and status", target_evidence);
    registry.register(TARGET_GAPS, "Sources not read, by AWS account or Kubernetes cluster", target_gaps);
    registry.register(
        TARGET_SCORE,
        "Passed over assessed controls, by AWS account or Kubernetes cluster, and framework",
        target_score,
    );

    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

/// The same metrics in the classic Prometheus text format (0.0.4), for
/// node_exporter's textfile collector and `promtool check metrics`: counter
/// families carry their `_total` name and there is no `# EOF` line.
pub fn text_format(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines().filter(|l| *l != "# EOF") {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Prometheus alert rules: violation, drift, stale evidence (the origin post's
/// three) and evidence gaps.
pub fn alert_rules() -> String {
    format!(
        r#"# Generated by compliance-rs from the metric names it exports.
groups:
  - name: compliance
    rules:
      - alert: ComplianceViolation
        expr: {CHECK_FAILED}{{severity=~"critical|high"}} > 0
        for: 0m
        labels:
          severity: critical
        annotations:
          summary: "Compliance check {{{{ $labels.check }}}} fails on {{{{ $value }}}} resource(s)"
          description: "A {{{{ $labels.severity }}}} check fails and no waiver covers it."
      - alert: ComplianceDrift
        expr: increase({VIOLATIONS}_total[1h]) > 5
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "More than 5 new compliance violations in the last hour"
          description: "{{{{ $value }}}} unwaived failures were observed in the last hour."
      - alert: MissingComplianceEvidence
        expr: time() - {LAST_EVIDENCE} > 86400
        for: 0m
        labels:
          severity: warning
        annotations:
          summary: "No compliance evidence from {{{{ $labels.collector }}}} for over 24 hours"
          description: "The collector has not produced evidence since {{{{ $value | humanizeDuration }}}}."
      - alert: ComplianceEvidenceGaps
        expr: {GAPS} > 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: "{{{{ $labels.collector }}}} could not judge {{{{ $value }}}} source(s) or resource(s)"
          description: "Evidence gaps are not counted as compliant: fix access or input so they can be judged."
"#
    )
}

/// A Grafana dashboard: overall score, score by framework, failing checks,
/// evidence gaps, evidence age.
pub fn grafana_dashboard() -> Value {
    let target = |expr: String, legend: &str| json!({ "expr": expr, "legendFormat": legend, "refId": "A" });
    let thresholds = json!({ "mode": "absolute", "steps": [
        { "color": "red", "value": null }, { "color": "yellow", "value": 80 }, { "color": "green", "value": 95 } ] });
    json!({
        "title": "Security compliance",
        "uid": "compliance-rs",
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-7d", "to": "now" },
        "templating": { "list": [] },
        "panels": [
            { "id": 1, "type": "stat", "title": "Overall compliance score", "gridPos": { "x": 0, "y": 0, "w": 6, "h": 6 },
              "targets": [target(format!("{SCORE}{{framework=\"\"}}"), "Compliance %")],
              "fieldConfig": { "defaults": { "unit": "percent", "min": 0, "max": 100, "thresholds": thresholds } } },
            { "id": 2, "type": "bargauge", "title": "Score by framework", "gridPos": { "x": 6, "y": 0, "w": 10, "h": 6 },
              "targets": [target(format!("{SCORE}{{framework!=\"\"}}"), "{{framework}}")],
              "fieldConfig": { "defaults": { "unit": "percent", "min": 0, "max": 100, "thresholds": thresholds } } },
            { "id": 3, "type": "stat", "title": "Evidence gaps", "gridPos": { "x": 16, "y": 0, "w": 8, "h": 6 },
              "targets": [target(format!("sum({GAPS})"), "gaps")] },
            { "id": 4, "type": "table", "title": "Failing checks", "gridPos": { "x": 0, "y": 6, "w": 16, "h": 10 },
              "targets": [{ "expr": format!("{CHECK_FAILED} > 0"), "format": "table", "instant": true, "refId": "A" }] },
            { "id": 5, "type": "timeseries", "title": "New violations per hour", "gridPos": { "x": 16, "y": 6, "w": 8, "h": 5 },
              "targets": [target(format!("increase({VIOLATIONS}_total[1h])"), "violations")] },
            { "id": 6, "type": "timeseries", "title": "Evidence age by collector", "gridPos": { "x": 16, "y": 11, "w": 8, "h": 5 },
              "targets": [target(format!("time() - {LAST_EVIDENCE}"), "{{collector}}")],
              "fieldConfig": { "defaults": { "unit": "s" } } }
        ]
    })
}
