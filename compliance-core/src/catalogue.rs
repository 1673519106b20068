//! The check catalogue: one entry per check, its metadata bound to its judge.
//!
//! A provider declares its checks as a `static` slice of [`CheckDef`]s over
//! one input type (a Kubernetes workload, a credential-report row, a bucket's
//! state) and one context type (settings, the time of the run). The judge's
//! signature names both, so a judge can only sit beside a check of its own
//! input: nothing is bound by position in an array or by matching id strings.
//! The same catalogue serves every source of that input: S3's checks judge a
//! bucket state read live from S3 or declared in Terraform alike.
//!
//! ```
//! use compliance_core::catalogue::{Catalogue, CheckDef};
//! use compliance_core::{CheckSpec, ResourceRef, Scope, Severity, Status, Verdict};
//!
//! struct Database { encrypted: bool }
//!
//! fn encrypted(db: &Database, _: &()) -> Option<Verdict> {
//!     let status = if db.encrypted { Status::Pass } else { Status::Fail };
//!     Some(Verdict::new(status, "storage encryption", serde_json::json!({ "encrypted": db.encrypted })))
//! }
//!
//! static DEFS: &[CheckDef<Database, ()>] = &[CheckDef {
//!     spec: CheckSpec {
//!         id: "demo.db.encrypted", title: "Databases are encrypted", severity: Severity::High,
//!         resource_kind: "Database", rationale: "Stolen disks leak data.",
//!         remediation: "Turn on storage encryption.", reference: "", remediable: false,
//!     },
//!     judge: encrypted,
//! }];
//!
//! let catalogue = Catalogue::new(DEFS);
//! assert!(catalogue.problems().is_empty());
//! let db = ResourceRef::new("demo", "Database", "db-1", "db-1");
//! let evidence = catalogue.judge(&Database { encrypted: false }, &(), db, &Scope::all(), chrono::Utc::now());
//! assert_eq!(evidence[0].status, Status::Fail);
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::check::{Check, CheckId, CheckSpec};
use crate::collector::Scope;
use crate::error::Error;
use crate::evidence::{Evidence, Status, Verdict};
use crate::resource::ResourceRef;

/// Judges one input of type `I` with context `C`. `None` means the check
/// does not apply to this input and produces no evidence (a root-only check
/// on an ordinary user, a label rule on a bare Pod).
pub type JudgeFn<I, C> = fn(&I, &C) -> Option<Verdict>;

/// One check as a provider writes it: static metadata and its judge.
pub struct CheckDef<I: ?Sized + 'static, C: ?Sized + 'static> {
    /// The metadata.
    pub spec: CheckSpec,
    /// The function that judges it.
    pub judge: JudgeFn<I, C>,
}

/// One check of a [`Catalogue`], its metadata validated.
pub struct Entry<I: ?Sized + 'static, C: ?Sized + 'static> {
    check: Check,
    judge: JudgeFn<I, C>,
}

impl<I: ?Sized, C: ?Sized> Entry<I, C> {
    /// The check's metadata.
    pub fn check(&self) -> &Check {
        &self.check
    }

    /// Judges one input.
    pub fn judge(&self, input: &I, context: &C) -> Option<Verdict> {
        (self.judge)(input, context)
    }
}

/// The checks of one input type, in declaration order.
pub struct Catalogue<I: ?Sized + 'static, C: ?Sized + 'static> {
    entries: Vec<Entry<I, C>>,
    problems: Vec<Error>,
}

impl<I: ?Sized, C: ?Sized> Catalogue<I, C> {
    /// Builds the catalogue. A definition with a malformed or repeated id is
    /// left out and listed in [`problems`](Self::problems), which every
    /// provider's tests assert to be empty: ids are literals, so a problem is a
    /// programming error caught by the tests, not something input can cause.
    pub fn new(defs: &'static [CheckDef<I, C>]) -> Self {
        let mut entries = Vec::with_capacity(defs.len());
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for def in defs {
            match def.spec.to_check() {
                Ok(check) if seen.insert(check.id.clone()) => entries.push(Entry { check, judge: def.judge }),
                Ok(check) => problems.push(Error::InvalidCheckId {
                    id: check.id.to_string(),
                    reason: "declared twice in one catalogue".into(),
                }),
                Err(e) => problems.push(e),
            }
        }
        Self { entries, problems }
    }

    /// Every entry, in declaration order.
    pub fn entries(&self) -> &[Entry<I, C>] {
        &self.entries
    }

    /// Definitions that were left out, with why.
    pub fn problems(&self) -> &[Error] {
        &self.problems
    }

    /// The metadata of every check.
    pub fn checks(&self) -> Vec<Check> {
        self.entries.iter().map(|e| e.check.clone()).collect()
    }

    /// The entry for one id.
    pub fn get(&self, id: &CheckId) -> Option<&Entry<I, C>> {
        self.entries.iter().find(|e| &e.check.id == id)
    }

    /// True when the catalogue has this check.
    pub fn contains(&self, id: &CheckId) -> bool {
        self.get(id).is_some()
    }

    /// The checks a built-in remediator fixes: a remediator's `fixes()` is
    /// derived from this, so the catalogue's `remediable` flag and the
    /// remediator cannot disagree.
    pub fn remediable(&self) -> Vec<CheckId> {
        self.entries.iter().filter(|e| e.check.remediable).map(|e| e.check.id.clone()).collect()
    }

    /// True when any check is in `scope`.
    pub fn any_wanted(&self, scope: &Scope) -> bool {
        self.entries.iter().any(|e| scope.wants(&e.check.id))
    }

    /// Judges one input with every check in `scope`: one evidence per check
    /// that applies, all sharing `resource` and the time `at`.
    pub fn judge(
        &self,
        input: &I,
        context: &C,
        resource: impl Into<Arc<ResourceRef>>,
        scope: &Scope,
        at: DateTime<Utc>,
    ) -> Vec<Evidence> {
        let resource = resource.into();
        self.entries
            .iter()
            .filter(|e| scope.wants(&e.check.id))
            .filter_map(|e| Some(e.judge(input, context)?.into_evidence(&e.check, Arc::clone(&resource), at)))
            .collect()
    }

    /// `error` evidence, for every check in `scope` that `applies`, on a
    /// resource whose input could not be read: a gap shown on the resource,
    /// never a silent pass.
    pub fn unreadable(
        &self,
        resource: impl Into<Arc<ResourceRef>>,
        reason: &str,
        scope: &Scope,
        at: DateTime<Utc>,
        applies: impl Fn(&Check) -> bool,
    ) -> Vec<Evidence> {
        let verdict =
            Verdict::new(Status::Error, format!("could not be judged: {reason}"), json!({ "reason": reason }));
        self.settle(&verdict, resource, scope, at, applies)
    }

    /// The same verdict for every check in `scope` that `applies`: a source
    /// that answered once for all of them (a denied call, a deleted resource).
    pub fn settle(
        &self,
        verdict: &Verdict,
        resource: impl Into<Arc<ResourceRef>>,
        scope: &Scope,
        at: DateTime<Utc>,
        applies: impl Fn(&Check) -> bool,
    ) -> Vec<Evidence> {
        let resource = resource.into();
        self.entries
            .iter()
            .filter(|e| scope.wants(&e.check.id) && applies(&e.check))
            .map(|e| verdict.clone().into_evidence(&e.check, Arc::clone(&resource), at))
            .collect()
    }
}

impl<I: ?Sized, C: ?Sized> std::fmt::Debug for Catalogue<I, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("checks", &self.entries.iter().map(|e| e.check.id.as_str()).collect::<Vec<_>>())
            .field("problems", &self.problems.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    fn yes(_: &u8, _: &()) -> Option<Verdict> {
        Some(Verdict::new(Status::Pass, "ok", json!({})))
    }
    fn never(_: &u8, _: &()) -> Option<Verdict> {
        None
    }

    const fn spec(id: &'static str) -> CheckSpec {
        CheckSpec {
            id,
            title: "t",
            severity: Severity::Low,
            resource_kind: "Thing",
            rationale: "",
            remediation: "",
            reference: "",
            remediable: false,
        }
    }

    static DEFS: &[CheckDef<u8, ()>] = &[
        CheckDef { spec: spec("demo.a.one"), judge: yes },
        CheckDef { spec: spec("demo.a.two"), judge: never },
        CheckDef { spec: spec("Bad"), judge: yes },
        CheckDef { spec: spec("demo.a.one"), judge: yes },
    ];

    #[test]
    fn malformed_and_repeated_ids_are_problems_not_entries() {
        let c = Catalogue::new(DEFS);
        assert_eq!(c.entries().len(), 2);
        assert_eq!(c.problems().len(), 2);
    }

    #[test]
    fn judges_skip_inputs_they_do_not_apply_to_and_respect_scope() {
        let c = Catalogue::new(DEFS);
        let r = ResourceRef::new("demo", "Thing", "x", "x");
        let now = Utc::now();
        assert_eq!(c.judge(&0, &(), r.clone(), &Scope::all(), now).len(), 1);
        assert_eq!(c.judge(&0, &(), r.clone(), &Scope::only(["demo.a.two"]), now).len(), 0);
        let gaps = c.unreadable(r, "bad", &Scope::all(), now, |_| true);
        assert_eq!(gaps.len(), 2);
        assert!(gaps.iter().all(|e| e.status == Status::Error));
    }
}
