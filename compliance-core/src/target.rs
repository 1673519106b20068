//! Targets: what one run reaches, named so that evidence, gaps and scores
//! can be told apart per AWS account, AWS region and Kubernetes cluster.
//!
//! Evidence names its target through its resource (`account`, `region`,
//! `cluster`); a gap through [`Gap::target`](crate::Gap::target). A
//! collector that reaches many targets (an AWS organization, several kube
//! contexts) lists them in [`Collection::targets`](crate::Collection::targets),
//! with their names and tags, and a report scores each.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ResourceRef;

/// What kind of target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TargetKind {
    /// An AWS account: its global services (IAM, S3, CloudTrail).
    AwsAccount,
    /// One region of an AWS account: its regional services (AWS Config).
    AwsRegion,
    /// A Kubernetes cluster, by kube context.
    K8sCluster,
}

/// One target of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Target {
    /// Its kind.
    pub kind: TargetKind,
    /// Its id: `aws:<account>`, `aws:<account>:<region>`, `k8s:<context>`.
    pub id: String,
    /// A name for people (the account's name, the context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tags (from an accounts file or the organization).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Target {
    /// A target of this kind and id (`aws:<account>`, `k8s:<context>`, ...).
    pub fn new(kind: TargetKind, id: impl Into<String>) -> Self {
        Self { kind, id: id.into(), name: None, tags: BTreeMap::new() }
    }

    /// An AWS account.
    pub fn aws_account(account: &str) -> Self {
        Self { kind: TargetKind::AwsAccount, id: aws_account_id(account), name: None, tags: BTreeMap::new() }
    }

    /// One region of an AWS account.
    pub fn aws_region(account: &str, region: &str) -> Self {
        Self { kind: TargetKind::AwsRegion, id: aws_region_id(account, region), name: None, tags: BTreeMap::new() }
    }

    /// A Kubernetes cluster, by context.
    pub fn k8s_cluster(context: &str) -> Self {
        Self { kind: TargetKind::K8sCluster, id: k8s_cluster_id(context), name: None, tags: BTreeMap::new() }
    }

    /// With a name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With tags.
    pub fn with_tags(mut self, tags: BTreeMap<String, String>) -> Self {
        self.tags = tags;
        self
    }
}

impl Target {
    /// The target an id names (`aws:<account>`, `aws:<account>:<region>`,
    /// `k8s:<context>`), without name or tags; `None` for another shape.
    pub fn from_id(id: &str) -> Option<Self> {
        match id.split_once(':')? {
            ("k8s", context) => Some(Self::k8s_cluster(context)),
            ("aws", rest) => Some(match rest.split_once(':') {
                Some((account, region)) => Self::aws_region(account, region),
                None => Self::aws_account(rest),
            }),
            _ => None,
        }
    }
}

/// `aws:<account>`.
pub fn aws_account_id(account: &str) -> String {
    format!("aws:{account}")
}

/// `aws:<account>:<region>`.
pub fn aws_region_id(account: &str, region: &str) -> String {
    format!("aws:{account}:{region}")
}

/// `k8s:<context>`.
pub fn k8s_cluster_id(context: &str) -> String {
    format!("k8s:{context}")
}

/// The target a resource belongs to: its cluster, else its account's
/// region, else its account; `None` for a resource of no target (a file).
pub fn target_of(resource: &ResourceRef) -> Option<String> {
    if let Some(cluster) = &resource.cluster {
        return Some(k8s_cluster_id(cluster));
    }
    let account = resource.account.as_deref()?;
    Some(match &resource.region {
        Some(region) => aws_region_id(account, region),
        None => aws_account_id(account),
    })
}

/// One of `count` deterministic parts of the targets, so that several
/// processes (the pods of an Indexed Job) share them without talking to
/// each other: a target belongs to the shard its key's SHA-256 falls in.
///
/// ```
/// use compliance_core::target::Shard;
/// let shards: Vec<Shard> = (0..3).map(|k| format!("{k}/3").parse()).collect::<Result<_, _>>()?;
/// // Every account belongs to exactly one shard, on every machine.
/// for account in ["111111111111", "222222222222", "333333333333"] {
///     assert_eq!(shards.iter().filter(|s| s.owns(account)).count(), 1);
/// }
/// assert!("3/3".parse::<Shard>().is_err());
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    /// From 0 to `count - 1` (as `JOB_COMPLETION_INDEX`).
    pub index: u32,
    /// How many shards; at least 1.
    pub count: u32,
}

impl Shard {
    /// The whole (one shard of one).
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether the target of this key (an account id, a context name) is this shard's.
    pub fn owns(&self, key: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |message: String| crate::Error::Config { field: "shard".into(), message, source: None };
        let (index, count) =
            s.split_once('/').ok_or_else(|| bad(format!("{s:?}: expected K/N, such as 0/4 (K from 0 to N-1)")))?;
        let number = |what: &str, v: &str| {
            v.trim().parse::<u32>().map_err(|e| bad(format!("{s:?}: {what} {v:?} is not a number: {e}")))
        };
        let (index, count) = (number("K", index)?, number("N", count)?);
        if count == 0 || index >= count {
            return Err(bad(format!("{s:?}: K must be from 0 to N-1, and N at least 1")));
        }
        Ok(Self { index, count })
    }
}

impl TryFrom<String> for Shard {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_evenly_enough_and_every_key_once() -> crate::Result<()> {
        let shards: Vec<Shard> = (0..4).map(|k| format!("{k}/4").parse()).collect::<crate::Result<_>>()?;
        let mut sizes = [0usize; 4];
        for n in 0..1000u64 {
            let key = format!("{:012}", 100_000_000_000 + n * 7919);
            let owners: Vec<usize> = (0..4).filter(|&k| shards[k].owns(&key)).collect();
            assert_eq!(owners.len(), 1, "{key}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| (200..300).contains(&n)), "{sizes:?}");
        assert!(Shard::ALL.owns("anything"));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn resources_name_their_target() {
        let aws = ResourceRef::new("aws", "AWS::S3::Bucket", "arn", "b");
        assert_eq!(target_of(&aws), None);
        let account = aws.clone().with_account_region(Some("111122223333".into()), None);
        assert_eq!(target_of(&account).as_deref(), Some("aws:111122223333"));
        let regional = aws.with_account_region(Some("111122223333".into()), Some("eu-west-1".into()));
        assert_eq!(target_of(&regional).as_deref(), Some("aws:111122223333:eu-west-1"));
        for id in ["aws:111122223333", "aws:111122223333:eu-west-1", "k8s:prod:east"] {
            assert_eq!(Target::from_id(id).map(|t| t.id).as_deref(), Some(id), "ids read back");
        }
        assert_eq!(Target::from_id("aws:1:eu-west-1").map(|t| t.kind), Some(TargetKind::AwsRegion));
        assert!(Target::from_id("gcp:project").is_none());
    }
}
