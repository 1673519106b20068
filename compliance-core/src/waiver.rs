//! Waivers: accepted risks with an owner, a reason and an expiry.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::evidence::{Evidence, Status, WaiverMark};

/// An accepted risk: failures of the checks matching `check` on the resources
/// matching `resource` are marked as waived until `expires`. A waiver never
/// changes a status; an expired waiver no longer applies and is reported.
///
/// Patterns use `*` for any run of characters; `resource` is matched against
/// [`ResourceRef::id`](crate::ResourceRef::id) and defaults to `*`.
/// `expires` is an RFC 3339 time, or a date: `2026-12-31` means the waiver
/// applies through that day (UTC).
///
/// ```
/// use compliance_core::Waiver;
/// let waivers = Waiver::parse_list(r#"
/// waivers:
///   - id: W-7
///     check: k8s.pod.*
///     resource: "*/kube-system/*"
///     reason: System pods are managed by the cloud provider.
///     owner: platform@example.com
///     expires: 2030-06-30
/// "#, "waivers.yaml")?;
/// assert_eq!(waivers[0].id, "W-7");
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Waiver {
    /// Unique id, cited in evidence and reports.
    pub id: String,
    /// Check id pattern.
    pub check: String,
    /// Resource id pattern.
    #[serde(default = "any")]
    pub resource: String,
    /// Why the risk is accepted.
    pub reason: String,
    /// Who accepted it.
    pub owner: String,
    /// When it stops applying.
    #[serde(deserialize_with = "deserialize_expiry")]
    pub expires: DateTime<Utc>,
}

fn any() -> String {
    "*".to_owned()
}

fn deserialize_expiry<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    if let Ok(at) = DateTime::parse_from_rfc3339(&text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.succ_opt())
        .and_then(|next| next.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            serde::de::Error::custom(format!("expires: {text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))
        })
}

impl Waiver {
    /// A waiver; `expires` is the first moment it no longer applies.
    pub fn new(
        id: impl Into<String>,
        check: impl Into<String>,
        resource: impl Into<String>,
        reason: impl Into<String>,
        owner: impl Into<String>,
        expires: DateTime<Utc>,
    ) -> Self {
        Self {
            id: id.into(),
            check: check.into(),
            resource: resource.into(),
            reason: reason.into(),
            owner: owner.into(),
            expires,
        }
    }

    /// Reads waivers from YAML or JSON text: a list, or an object with a
    /// `waivers` list. Errors name the source, the line of the document and
    /// the field at fault; duplicated ids are refused.
    pub fn parse_list(text: &str, source_name: &str) -> Result<Vec<Waiver>, Error> {
        let stream = crate::yaml::parse_documents(text, source_name);
        if let Some(error) = stream.error {
            return Err(error);
        }
        let mut waivers = Vec::new();
        for doc in stream.documents {
            let bad =
                |message: String| Error::Parse { source_name: source_name.to_owned(), line: Some(doc.line), message };
            let list = match doc.value {
                serde_json::Value::Array(items) => items,
                serde_json::Value::Object(mut map) => match map.remove("waivers") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => return Err(bad("expected a list of waivers, or an object with a `waivers` list".into())),
                },
                _ => return Err(bad("expected a list of waivers, or an object with a `waivers` list".into())),
            };
            for (i, item) in list.into_iter().enumerate() {
                let id = item.get("id").and_then(|v| v.as_str()).unwrap_or("?").to_owned();
                let waiver: Waiver =
                    serde_json::from_value(item).map_err(|e| bad(format!("waiver #{} (id {id}): {e}", i + 1)))?;
                waivers.push(waiver);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for w in &waivers {
            if w.id.trim().is_empty() || w.owner.trim().is_empty() || w.reason.trim().is_empty() {
                return Err(Error::Parse {
                    source_name: source_name.to_owned(),
                    line: None,
                    message: format!("waiver {:?}: id, owner and reason must not be empty", w.id),
                });
            }
            if !seen.insert(w.id.as_str()) {
                return Err(Error::Parse {
                    source_name: source_name.to_owned(),
                    line: None,
                    message: format!("waiver id {:?} is used more than once", w.id),
                });
            }
        }
        Ok(waivers)
    }

    /// True when the waiver still applies at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires
    }

    /// True when the waiver's patterns cover this evidence.
    pub fn covers(&self, evidence: &Evidence) -> bool {
        glob_match(&self.check, evidence.check_id.as_str()) && glob_match(&self.resource, &evidence.resource.id)
    }

    fn mark(&self) -> Arc<WaiverMark> {
        Arc::new(WaiverMark {
            id: self.id.clone(),
            owner: self.owner.clone(),
            reason: self.reason.clone(),
            expires: self.expires,
        })
    }
}

/// A waiver that had expired when the run applied waivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExpiredWaiver {
    /// The waiver.
    pub waiver: Waiver,
    /// Failures it would have covered had it not expired.
    pub failures_no_longer_waived: usize,
}

/// Marks each failure covered by an active waiver (the first that matches, in
/// the order given) and returns the expired waivers, with the failures they no
/// longer cover. Statuses are never changed.
///
/// ```
/// use chrono::{Duration, Utc};
/// use compliance_core::{apply_waivers, Check, Evidence, ResourceRef, Severity, Status, Waiver};
/// let check = Check::new("k8s.pod.run_as_non_root", "t", Severity::High, "Workload")?;
/// let mut evidence = vec![Evidence::new(&check, ResourceRef::new("k8s", "Pod", "c/ns/Pod/a", "a"), Status::Fail, "root")];
/// let now = Utc::now();
/// let waivers = [Waiver::new("W-1", "k8s.pod.*", "*", "legacy", "team", now + Duration::days(1))];
/// let expired = apply_waivers(&mut evidence, &waivers, now);
/// assert!(expired.is_empty());
/// assert_eq!(evidence[0].status, Status::Fail);
/// assert_eq!(evidence[0].waiver.as_ref().map(|w| w.id.as_str()), Some("W-1"));
/// # Ok::<(), compliance_core::Error>(())
/// ```
pub fn apply_waivers(evidence: &mut [Evidence], waivers: &[Waiver], now: DateTime<Utc>) -> Vec<ExpiredWaiver> {
    let (active, expired): (Vec<&Waiver>, Vec<&Waiver>) = waivers.iter().partition(|w| w.is_active(now));
    let marks: Vec<Arc<WaiverMark>> = active.iter().map(|w| w.mark()).collect();
    let mut expired: Vec<ExpiredWaiver> =
        expired.into_iter().map(|w| ExpiredWaiver { waiver: w.clone(), failures_no_longer_waived: 0 }).collect();
    for e in evidence.iter_mut().filter(|e| e.status == Status::Fail) {
        if let Some(i) = active.iter().position(|w| w.covers(e)) {
            e.waiver = Some(Arc::clone(&marks[i]));
        } else {
            for x in expired.iter_mut().filter(|x| x.waiver.covers(e)) {
                x.failures_no_longer_waived += 1;
            }
        }
    }
    expired
}

/// `*` matches any run of characters (dots and slashes included); every other
/// character matches itself.
///
/// ```
/// use compliance_core::waiver::glob_match;
/// assert!(glob_match("k8s.*", "k8s.pod.run_as_non_root"));
/// assert!(glob_match("*/kube-system/*", "prod/kube-system/Pod/dns"));
/// assert!(!glob_match("aws.*", "k8s.pod.run_as_non_root"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Check, ResourceRef, Severity};
    use chrono::Duration;

    #[test]
    fn glob_cases() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbb"));
        assert!(glob_match("a**", "a"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn date_expiry_covers_the_whole_day() -> Result<(), Error> {
        let w = &Waiver::parse_list("- {id: A, check: x.y, reason: r, owner: o, expires: 2030-01-31}", "w.yaml")?[0];
        assert_eq!(w.expires.to_rfc3339(), "2030-02-01T00:00:00+00:00");
        assert_eq!(w.resource, "*");
        Ok(())
    }

    #[test]
    fn parse_errors_name_source_line_and_field() {
        let err = Waiver::parse_list(
            "waivers:\n  - id: A\n    check: x.y\n    owner: o\n    expires: 2030-01-01\n",
            "w.yaml",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert_eq!(err, "w.yaml:1: waiver #1 (id A): missing field `reason`");
        let err = Waiver::parse_list("- {id: A, check: x.y, reason: r, owner: o, expires: soon}", "w.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("expires"), "{err}");
        let dup = "- {id: A, check: x.y, reason: r, owner: o, expires: 2030-01-01}\n- {id: A, check: x.z, reason: r, owner: o, expires: 2030-01-01}";
        assert!(Waiver::parse_list(dup, "w.yaml").is_err());
    }

    #[test]
    fn expired_waiver_does_not_apply_and_is_reported() -> Result<(), Error> {
        let check = Check::new("x.y", "t", Severity::High, "K")?;
        let now = Utc::now();
        let mut evidence = vec![
            Evidence::new(&check, ResourceRef::new("x", "K", "r1", "r1"), Status::Fail, "bad"),
            Evidence::new(&check, ResourceRef::new("x", "K", "r2", "r2"), Status::Pass, "good"),
        ];
        let waivers = [Waiver::new("old", "x.*", "*", "r", "o", now - Duration::seconds(1))];
        let expired = apply_waivers(&mut evidence, &waivers, now);
        assert!(evidence.iter().all(|e| e.waiver.is_none()));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].failures_no_longer_waived, 1);
        Ok(())
    }
}
