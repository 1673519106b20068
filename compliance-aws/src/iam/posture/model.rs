//! What the posture checks read: principals with their policies, and the
//! password policy; and how a policy document is read for administrator access.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A user, group or role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PrincipalKind {
    /// An IAM user.
    User,
    /// An IAM group.
    Group,
    /// An IAM role.
    Role,
}

impl PrincipalKind {
    /// The resource kind of its evidence.
    pub fn resource_kind(self) -> &'static str {
        match self {
            PrincipalKind::User => "IAMUser",
            PrincipalKind::Group => "IAMGroup",
            PrincipalKind::Role => "IAMRole",
        }
    }
}

/// One principal as `GetAccountAuthorizationDetails` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    /// User, group or role.
    pub kind: PrincipalKind,
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its path (`/aws-service-role/` for service-linked roles).
    pub path: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// ARNs of the managed policies attached to it.
    pub attached: Vec<String>,
    /// Its inline policies: name -> document.
    pub inline: BTreeMap<String, Value>,
    /// A user's groups.
    pub groups: Vec<String>,
    /// A role's last use (`RoleLastUsed.LastUsedDate`).
    pub last_used: Option<DateTime<Utc>>,
}

/// Every principal, and the default version of every managed policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthorizationDetails {
    /// Users, groups and roles.
    pub principals: Vec<Principal>,
    /// Managed policy ARN -> its default version's document.
    pub policies: BTreeMap<String, Value>,
}

/// The account's password policy: every field `UpdateAccountPasswordPolicy`
/// sets (a field left out reverts to AWS's default, so a fix writes them all).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasswordPolicy {
    /// `MinimumPasswordLength`.
    pub min_length: i32,
    /// `RequireNumbers`.
    pub numbers: bool,
    /// `RequireUppercaseCharacters`.
    pub uppercase: bool,
    /// `RequireLowercaseCharacters`.
    pub lowercase: bool,
    /// `RequireSymbols`.
    pub symbols: bool,
    /// `AllowUsersToChangePassword`.
    #[serde(default)]
    pub users_may_change: bool,
    /// `MaxPasswordAge`, in days.
    #[serde(default)]
    pub max_age_days: Option<i32>,
    /// `PasswordReusePrevention`: how many previous passwords are remembered.
    #[serde(default)]
    pub reuse_prevention: Option<i32>,
    /// `HardExpiry`.
    #[serde(default)]
    pub hard_expiry: bool,
}

impl PasswordPolicy {
    /// This policy with what PCI DSS v4.0 8.3.6 asks added (at least
    /// `min_length` characters, numbers, letters), everything else kept.
    pub fn strengthened(&self, min_length: i32) -> Self {
        Self {
            min_length: self.min_length.max(min_length),
            numbers: true,
            lowercase: self.lowercase || !self.uppercase,
            ..self.clone()
        }
    }
}

/// The ARN of AWS's administrator policy.
pub const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// True when a statement of `document` allows every action on every
/// resource (`"Action": "*"` or `"*:*"`, `"Resource": "*"`, no condition).
pub fn grants_admin(document: &Value) -> bool {
    one_or_many(&document["Statement"]).into_iter().any(|s| {
        s["Effect"] == "Allow"
            && s.get("Condition").is_none()
            && one_or_many(&s["Action"]).iter().any(|a| *a == "*" || *a == "*:*")
            && one_or_many(&s["Resource"]).iter().any(|r| *r == "*")
    })
}

impl AuthorizationDetails {
    /// Where `principal`'s administrator access comes from: attached
    /// policies, inline policies and (for a user) its groups'. Empty when
    /// it has none.
    pub fn admin_sources(&self, principal: &Principal) -> Vec<String> {
        let mut sources = self.own_admin_sources(principal);
        for group in &principal.groups {
            if let Some(g) = self.principals.iter().find(|p| p.kind == PrincipalKind::Group && &p.name == group) {
                sources.extend(self.own_admin_sources(g).into_iter().map(|s| format!("group {group}: {s}")));
            }
        }
        sources
    }

    fn own_admin_sources(&self, principal: &Principal) -> Vec<String> {
        let mut sources = Vec::new();
        for arn in &principal.attached {
            if arn == ADMINISTRATOR_ACCESS || self.policies.get(arn).is_some_and(grants_admin) {
                sources.push(format!("attached policy {arn}"));
            }
        }
        for (name, document) in &principal.inline {
            if grants_admin(document) {
                sources.push(format!("inline policy {name}"));
            }
        }
        sources
    }
}

/// A policy document as IAM returns it: URL-encoded JSON (RFC 3986).
pub(crate) fn decode_document(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    serde_json::from_str(&decoded).or_else(|_| serde_json::from_str(text)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn star_on_star_is_admin_and_narrower_statements_are_not() {
        assert!(grants_admin(&json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})));
        assert!(grants_admin(
            &json!({"Statement": [{"Effect": "Allow", "Action": ["s3:*", "*:*"], "Resource": ["*"]}]})
        ));
        assert!(!grants_admin(&json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})));
        assert!(!grants_admin(&json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})));
        assert!(!grants_admin(
            &json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}]})
        ));
        let conditioned = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]});
        assert!(!grants_admin(&conditioned), "a condition narrows it; the check reports unconditional access");
        assert_eq!(decode_document("%7B%22Statement%22%3A%5B%5D%7D"), json!({"Statement": []}));
    }
}
