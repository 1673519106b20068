//! Drift notifications: what changed since the previous run, for people, as
//! a webhook body (JSON, or Slack's `text` form). Only changes: new
//! failures, resolved failures, new gaps; most severe first.

use chrono::{DateTime, Utc};
use compliance_core::{Severity, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::Report;

/// What kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A failure that was not there before.
    NewFailure,
    /// Evidence or a source that could not be judged, and could before.
    NewGap,
    /// A failure that now passes or no longer applies.
    Resolved,
}

impl ChangeKind {
    fn label(self) -> &'static str {
        match self {
            ChangeKind::NewFailure => "NEW FAILURE",
            ChangeKind::NewGap => "NEW GAP",
            ChangeKind::Resolved => "RESOLVED",
        }
    }
}

/// One change worth telling someone about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NotifiedChange {
    /// What kind.
    pub kind: ChangeKind,
    /// The check (empty for a source gap).
    pub check_id: String,
    /// Its severity.
    pub severity: Severity,
    /// The resource id, or the source that could not be read.
    pub resource: String,
    /// The evidence's message, or the gap's reason.
    pub message: String,
}

/// The changes of one or more runs, grouped in one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// The latest run it covers.
    pub run_id: String,
    /// When that run finished.
    pub at: DateTime<Utc>,
    /// How many runs it covers (more than one when rate limiting held some back).
    pub runs: usize,
    /// The changes, most severe first, new failures before gaps before resolutions.
    pub changes: Vec<NotifiedChange>,
}

impl NotifiedChange {
    /// A change.
    pub fn new(
        kind: ChangeKind,
        check_id: impl Into<String>,
        severity: Severity,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self { kind, check_id: check_id.into(), severity, resource: resource.into(), message: message.into() }
    }
}

impl Notification {
    /// A notification of one run's changes, sorted.
    pub fn new(run_id: impl Into<String>, at: DateTime<Utc>, changes: Vec<NotifiedChange>) -> Self {
        let mut n = Self { run_id: run_id.into(), at, runs: 1, changes };
        n.sort();
        n
    }

    /// The changes `report` (with its delta) brings, at or above `min_severity`
    /// (resolutions and gaps always count); `None` when nothing changed.
    pub fn from_report(report: &Report, min_severity: Severity) -> Option<Self> {
        let delta = report.delta.as_ref()?;
        let find = |check: &compliance_core::CheckId, resource: &str| {
            report.evidence.iter().find(|e| &e.check_id == check && e.resource.id == resource)
        };
        let severity_of = |check: &compliance_core::CheckId| {
            report.checks.iter().find(|c| &c.id == check).map_or(Severity::Medium, |c| c.severity)
        };
        let mut changes = Vec::new();
        for c in &delta.new_failures {
            let severity = severity_of(&c.check_id);
            if severity >= min_severity {
                let message = find(&c.check_id, &c.resource).map(|e| e.message.clone()).unwrap_or_default();
                changes.push(NotifiedChange {
                    kind: ChangeKind::NewFailure,
                    check_id: c.check_id.to_string(),
                    severity,
                    resource: c.resource.clone(),
                    message,
                });
            }
        }
        for c in &delta.new_gaps {
            let message = find(&c.check_id, &c.resource).map(|e| e.message.clone()).unwrap_or_default();
            changes.push(NotifiedChange {
                kind: ChangeKind::NewGap,
                check_id: c.check_id.to_string(),
                severity: severity_of(&c.check_id),
                resource: c.resource.clone(),
                message,
            });
        }
        for source in &delta.new_source_gaps {
            let reason = report
                .gaps
                .iter()
                .find(|g| source == &format!("{}: {}", g.collector, g.source.as_deref().unwrap_or("(whole collector)")))
                .map(|g| g.reason.clone())
                .unwrap_or_default();
            changes.push(NotifiedChange {
                kind: ChangeKind::NewGap,
                check_id: String::new(),
                severity: Severity::High,
                resource: source.clone(),
                message: reason,
            });
        }
        for c in delta.resolved.iter().chain(&delta.no_longer_observed) {
            let message = match c.after {
                Some(Status::NotApplicable) => "no longer applies".to_owned(),
                None => "no longer observed".to_owned(),
                _ => "now passes".to_owned(),
            };
            changes.push(NotifiedChange {
                kind: ChangeKind::Resolved,
                check_id: c.check_id.to_string(),
                severity: severity_of(&c.check_id),
                resource: c.resource.clone(),
                message,
            });
        }
        if changes.is_empty() {
            return None;
        }
        let mut n = Notification { run_id: report.run_id.to_string(), at: report.finished_at, runs: 1, changes };
        n.sort();
        Some(n)
    }

    fn sort(&mut self) {
        self.changes.sort_by(|a, b| {
            (a.kind, std::cmp::Reverse(a.severity), &a.check_id, &a.resource).cmp(&(
                b.kind,
                std::cmp::Reverse(b.severity),
                &b.check_id,
                &b.resource,
            ))
        });
    }

    /// Adds a later notification (rate limiting held this one back): one
    /// message, nothing lost. A failure that was resolved in between is
    /// reported as both.
    pub fn merge(&mut self, later: Notification) {
        self.run_id = later.run_id;
        self.at = later.at;
        self.runs += later.runs;
        self.changes.extend(later.changes);
        self.sort();
    }

    /// One line: counts per kind.
    pub fn summary(&self) -> String {
        let count = |k: ChangeKind| self.changes.iter().filter(|c| c.kind == k).count();
        format!(
            "compliance drift: {} new failures, {} new gaps, {} resolved (run {}{})",
            count(ChangeKind::NewFailure),
            count(ChangeKind::NewGap),
            count(ChangeKind::Resolved),
            self.run_id,
            if self.runs > 1 { format!(", {} runs", self.runs) } else { String::new() }
        )
    }

    /// The JSON webhook body.
    pub fn to_json(&self) -> Value {
        json!({ "summary": self.summary(), "run_id": self.run_id, "at": self.at, "runs": self.runs, "changes": self.changes })
    }

    /// A Slack incoming-webhook body (`text`, mrkdwn), at most `max_lines`
    /// changes listed and the rest counted.
    pub fn to_slack(&self, max_lines: usize) -> Value {
        let mut lines = vec![format!("*{}*", self.summary())];
        for c in self.changes.iter().take(max_lines) {
            let what = if c.check_id.is_empty() { String::new() } else { format!("`{}` ", c.check_id) };
            lines.push(format!("• {} [{}] {what}on `{}`: {}", c.kind.label(), c.severity, c.resource, c.message));
        }
        if self.changes.len() > max_lines {
            lines.push(format!("… and {} more", self.changes.len() - max_lines));
        }
        json!({ "text": lines.join("\n") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: ChangeKind, severity: Severity, check: &str) -> NotifiedChange {
        NotifiedChange { kind, check_id: check.into(), severity, resource: "r".into(), message: "m".into() }
    }

    #[test]
    fn new_failures_come_first_most_severe_first_and_merging_keeps_everything() {
        let mut first = Notification {
            run_id: "1".into(),
            at: Utc::now(),
            runs: 1,
            changes: vec![
                change(ChangeKind::Resolved, Severity::Critical, "a.b.c"),
                change(ChangeKind::NewFailure, Severity::Low, "a.b.d"),
            ],
        };
        first.sort();
        let later = Notification {
            run_id: "2".into(),
            at: Utc::now(),
            runs: 1,
            changes: vec![
                change(ChangeKind::NewFailure, Severity::Critical, "a.b.e"),
                change(ChangeKind::NewGap, Severity::High, "a.b.f"),
            ],
        };
        first.merge(later);
        let order: Vec<&str> = first.changes.iter().map(|c| c.check_id.as_str()).collect();
        assert_eq!(order, ["a.b.e", "a.b.d", "a.b.f", "a.b.c"]);
        assert_eq!((first.run_id.as_str(), first.runs), ("2", 2));
        assert!(first.summary().starts_with("compliance drift: 2 new failures, 1 new gaps, 1 resolved"));
        let slack = first.to_slack(2);
        let text = slack["text"].as_str().unwrap_or_default();
        assert!(text.contains("NEW FAILURE [critical] `a.b.e`"), "{text}");
        assert!(text.ends_with("… and 2 more"), "{text}");
    }
}
