//! IAM posture beyond the credential report, from one paged read of every
//! user, group, role and policy (`GetAccountAuthorizationDetails`) and the
//! account's password policy:
//!
//! - `aws.iam.admin_access`: users, groups and roles with administrator
//!   access (`AdministratorAccess`, or `*` on `*` in any attached or inline
//!   policy, a user's groups included);
//! - `aws.iam.user_direct_policies`: policies attached to users directly
//!   rather than through groups;
//! - `aws.iam.role_unused`: roles not used for 90 days;
//! - `aws.iam.password_policy`: the account's password policy meets PCI DSS
//!   v4.0 8.3.6 (at least 12 characters, letters and numbers).
//!
//! `model` holds the data and the policy reading, `checks` the judges and
//! catalogues, `collector` the calls.

mod checks;
mod collector;
mod model;
mod remediator;

pub use checks::{PostureContext, password_catalogue, principal_catalogue};
pub use collector::{IamPostureCollector, PostureApi, SdkPosture};
pub use model::{AuthorizationDetails, PasswordPolicy, Principal, PrincipalKind, grants_admin};
pub use remediator::PasswordPolicyRemediator;

use serde::{Deserialize, Serialize};

/// Thresholds of the posture checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PostureConfig {
    /// The shortest password the policy may allow (PCI DSS v4.0 8.3.6: 12).
    pub min_password_length: i32,
    /// Days after which an unused role is flagged.
    pub role_unused_days: i64,
}

impl Default for PostureConfig {
    fn default() -> Self {
        Self { min_password_length: 12, role_unused_days: 90 }
    }
}
