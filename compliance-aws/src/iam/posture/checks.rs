//! The posture judges and their two catalogues: one over principals, one
//! over the account's password policy.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use compliance_core::{Catalogue, CheckDef, CheckSpec, Severity, Status, Verdict};
use serde_json::json;

use super::PostureConfig;
use super::model::{AuthorizationDetails, PasswordPolicy, Principal, PrincipalKind};

/// What every judge of one read shares.
#[derive(Clone, Debug)]
pub struct PostureContext {
    /// Every principal and managed policy (a user's groups are read from it).
    pub details: AuthorizationDetails,
    /// Thresholds.
    pub config: PostureConfig,
    /// The time of the read.
    pub now: DateTime<Utc>,
}

fn service_linked(p: &Principal) -> bool {
    p.kind == PrincipalKind::Role && p.path.starts_with("/aws-service-role/")
}

fn admin_access(p: &Principal, c: &PostureContext) -> Option<Verdict> {
    if service_linked(p) {
        return Some(Verdict::new(
            Status::NotApplicable,
            "a service-linked role, managed by AWS",
            json!({ "path": p.path }),
        ));
    }
    let sources = c.details.admin_sources(p);
    let details = json!({ "admin_sources": sources, "attached_policies": p.attached, "inline_policies": p.inline.keys().collect::<Vec<_>>() });
    Some(if sources.is_empty() {
        Verdict::new(Status::Pass, "no administrator access", details)
    } else {
        Verdict::new(Status::Fail, format!("administrator access through {}", sources.join("; ")), details)
    })
}

fn direct_policies(p: &Principal, _: &PostureContext) -> Option<Verdict> {
    (p.kind == PrincipalKind::User).then(|| {
        let details = json!({ "attached_policies": p.attached, "inline_policies": p.inline.keys().collect::<Vec<_>>(), "groups": p.groups });
        let count = p.attached.len() + p.inline.len();
        if count == 0 {
            Verdict::new(Status::Pass, "permissions come through groups only", details)
        } else {
            Verdict::new(Status::Fail, format!("{count} polic(ies) attached to the user directly, not through a group"), details)
        }
    })
}

fn role_unused(p: &Principal, c: &PostureContext) -> Option<Verdict> {
    if p.kind != PrincipalKind::Role {
        return None;
    }
    if service_linked(p) {
        return Some(Verdict::new(
            Status::NotApplicable,
            "a service-linked role, used by AWS",
            json!({ "path": p.path }),
        ));
    }
    let limit = c.config.role_unused_days;
    let details = json!({ "last_used": p.last_used, "created": p.created, "threshold_days": limit });
    let days = |t: DateTime<Utc>| (c.now - t).num_days();
    Some(match (p.last_used, p.created) {
        (Some(used), _) if days(used) > limit => {
            Verdict::new(Status::Fail, format!("last used {} days ago (threshold {limit})", days(used)), details)
        }
        (Some(used), _) => Verdict::new(Status::Pass, format!("last used {} days ago", days(used)), details),
        (None, Some(created)) if days(created) > limit => Verdict::new(
            Status::Fail,
            format!("never used, and created {} days ago (threshold {limit})", days(created)),
            details,
        ),
        (None, _) => Verdict::new(Status::Pass, "not used yet, and created recently", details),
    })
}

static PRINCIPAL_DEFS: &[CheckDef<Principal, PostureContext>] = &[
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.admin_access",
            title: "Users, groups and roles do not hold administrator access",
            severity: Severity::High,
            resource_kind: "IAMPrincipal",
            rationale: "Administrator access (AdministratorAccess, or * on *) turns one leaked credential into control of the account; least privilege keeps it to the few break-glass identities that need it.",
            remediation: "Replace AdministratorAccess and *-on-* statements with policies scoped to what the identity does; keep administrator access for a monitored break-glass role.",
            reference: "PCI DSS v4.0 7.2.2: access is assigned based on least privilege",
            remediable: false,
        },
        judge: admin_access,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.user_direct_policies",
            title: "Users get permissions through groups, not policies attached to them",
            severity: Severity::Low,
            resource_kind: "IAMUser",
            rationale: "Permissions attached user by user drift out of review; groups make access a role's, reviewed once.",
            remediation: "Move the user's policies to a group for the role and add the user to it.",
            reference: "CIS AWS Foundations Benchmark 1.15",
            remediable: false,
        },
        judge: direct_policies,
    },
    CheckDef {
        spec: CheckSpec {
            id: "aws.iam.role_unused",
            title: "Roles are in use",
            severity: Severity::Medium,
            resource_kind: "IAMRole",
            rationale: "A role nobody uses still grants what it grants; removing unused access is part of every access review.",
            remediation: "Confirm with the role's owner, then delete the role (or its trust policy's principals).",
            reference: "PCI DSS v4.0 7.2.4: accounts and access privileges are reviewed and inappropriate access removed",
            remediable: false,
        },
        judge: role_unused,
    },
];

static PRINCIPALS: LazyLock<Catalogue<Principal, PostureContext>> = LazyLock::new(|| Catalogue::new(PRINCIPAL_DEFS));

/// The catalogue of checks judged per user, group and role.
pub fn principal_catalogue() -> &'static Catalogue<Principal, PostureContext> {
    &PRINCIPALS
}

/// Judges the password policy (`None`: the account has none).
fn password_policy(policy: &Option<PasswordPolicy>, c: &PostureConfig) -> Option<Verdict> {
    let min = c.min_password_length;
    let Some(p) = policy else {
        return Some(Verdict::new(
            Status::Fail,
            "no password policy: IAM allows passwords of 8 characters of any kind",
            json!({ "required_min_length": min }),
        ));
    };
    let details = json!({ "min_length": p.min_length, "require_numbers": p.numbers, "require_uppercase": p.uppercase,
        "require_lowercase": p.lowercase, "require_symbols": p.symbols, "required_min_length": min });
    let mut missing = Vec::new();
    if p.min_length < min {
        missing.push(format!("a minimum length of {} (at least {min} required)", p.min_length));
    }
    if !p.numbers {
        missing.push("numbers are not required".to_owned());
    }
    if !(p.uppercase || p.lowercase) {
        missing.push("letters are not required".to_owned());
    }
    Some(if missing.is_empty() {
        Verdict::new(
            Status::Pass,
            format!("at least {} characters, letters and numbers required", p.min_length),
            details,
        )
    } else {
        Verdict::new(Status::Fail, missing.join("; "), details)
    })
}

static PASSWORD_DEFS: &[CheckDef<Option<PasswordPolicy>, PostureConfig>] = &[CheckDef {
    spec: CheckSpec {
        id: "aws.iam.password_policy",
        title: "The account's password policy requires strong passwords",
        severity: Severity::Medium,
        resource_kind: "AWSAccount",
        rationale: "Short or single-class passwords fall to guessing; PCI DSS v4.0 asks for 12 characters with letters and numbers.",
        remediation: "Set the account password policy: minimum length 12 or more, require numbers and letters (compliance remediate does it, keeping the other settings).",
        reference: "PCI DSS v4.0 8.3.6",
        remediable: true,
    },
    judge: password_policy,
}];

static PASSWORD: LazyLock<Catalogue<Option<PasswordPolicy>, PostureConfig>> =
    LazyLock::new(|| Catalogue::new(PASSWORD_DEFS));

/// The catalogue of the account's password policy check.
pub fn password_catalogue() -> &'static Catalogue<Option<PasswordPolicy>, PostureConfig> {
    &PASSWORD
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Duration;
    use serde_json::json;

    use super::*;

    fn principal(kind: PrincipalKind, name: &str) -> Principal {
        Principal {
            kind,
            name: name.into(),
            arn: format!("arn:aws:iam::123456789012:x/{name}"),
            path: "/".into(),
            created: Some(Utc::now() - Duration::days(400)),
            attached: Vec::new(),
            inline: BTreeMap::new(),
            groups: Vec::new(),
            last_used: None,
        }
    }

    #[test]
    fn catalogues_have_well_formed_unique_ids() {
        assert!(principal_catalogue().problems().is_empty(), "{:?}", principal_catalogue().problems());
        assert!(password_catalogue().problems().is_empty());
        assert_eq!(principal_catalogue().checks().len(), 3);
    }

    #[test]
    fn administrator_access_is_found_attached_inline_and_through_groups() {
        let mut admins = principal(PrincipalKind::Group, "admins");
        admins.attached.push(super::super::model::ADMINISTRATOR_ACCESS.into());
        let mut alice = principal(PrincipalKind::User, "alice");
        alice.groups.push("admins".into());
        let mut deploy = principal(PrincipalKind::Role, "deploy");
        deploy.inline.insert("all".into(), json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
        let bob = principal(PrincipalKind::User, "bob");
        let details = AuthorizationDetails {
            principals: vec![admins.clone(), alice.clone(), deploy.clone(), bob.clone()],
            policies: BTreeMap::new(),
        };
        let c = PostureContext { details, config: PostureConfig::default(), now: Utc::now() };
        let verdict = |p: &Principal| admin_access(p, &c).map(|v| (v.status, v.message));
        assert_eq!(verdict(&alice).map(|v| v.0), Some(Status::Fail));
        assert!(verdict(&alice).is_some_and(|v| {
            v.1.contains("group admins: attached policy arn:aws:iam::aws:policy/AdministratorAccess")
        }));
        assert!(verdict(&deploy).is_some_and(|v| v.1 == "administrator access through inline policy all"));
        assert_eq!(verdict(&bob).map(|v| v.0), Some(Status::Pass));
    }

    #[test]
    fn roles_unused_for_longer_than_the_threshold_fail_and_service_linked_ones_do_not_apply() {
        let c = PostureContext {
            details: AuthorizationDetails::default(),
            config: PostureConfig::default(),
            now: Utc::now(),
        };
        let mut role = principal(PrincipalKind::Role, "old");
        assert_eq!(role_unused(&role, &c).map(|v| v.status), Some(Status::Fail), "never used, 400 days old");
        role.last_used = Some(Utc::now() - Duration::days(3));
        assert_eq!(role_unused(&role, &c).map(|v| v.status), Some(Status::Pass));
        role.path = "/aws-service-role/".into();
        assert_eq!(role_unused(&role, &c).map(|v| v.status), Some(Status::NotApplicable));
        assert_eq!(role_unused(&principal(PrincipalKind::User, "u"), &c), None);
    }

    #[test]
    fn the_password_policy_needs_twelve_characters_letters_and_numbers() {
        let c = PostureConfig::default();
        assert_eq!(password_policy(&None, &c).map(|v| v.status), Some(Status::Fail));
        let weak = PasswordPolicy { min_length: 8, numbers: true, lowercase: true, ..PasswordPolicy::default() };
        assert!(password_policy(&Some(weak), &c).is_some_and(|v| v.message.contains("a minimum length of 8")));
        let strong = PasswordPolicy { min_length: 14, numbers: true, uppercase: true, ..PasswordPolicy::default() };
        assert_eq!(password_policy(&Some(strong), &c).map(|v| v.status), Some(Status::Pass));
    }
}
