//! The accounts of an AWS Organization (Organizations `ListAccounts`, or
//! the accounts under given organizational units, nested ones included).

use async_trait::async_trait;

use crate::api::ApiError;

/// An account of the organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAccount {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` (the `State`, else the older `Status`).
    pub state: String,
}

/// The Organizations calls a fleet makes (from the management account or a
/// delegated administrator).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait OrgApi: Send + Sync {
    /// `organizations:ListAccounts`, every page.
    async fn accounts(&self) -> Result<Vec<OrgAccount>, ApiError>;
    /// `organizations:ListAccountsForParent` of one unit, every page.
    async fn accounts_in(&self, parent: &str) -> Result<Vec<OrgAccount>, ApiError>;
    /// `organizations:ListOrganizationalUnitsForParent`, every page: the ids of the units right under `parent`.
    async fn units_in(&self, parent: &str) -> Result<Vec<String>, ApiError>;
}

/// Units deeper than this are not followed (AWS allows five levels).
const MAX_DEPTH: usize = 8;

/// The accounts under these units and every unit below them, each once.
pub async fn accounts_under(api: &dyn OrgApi, units: &[String]) -> Result<Vec<OrgAccount>, ApiError> {
    let mut accounts: Vec<OrgAccount> = Vec::new();
    let mut level: Vec<String> = units.to_vec();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for unit in level.into_iter().filter(|u| seen.insert(u.clone())) {
            for a in api.accounts_in(&unit).await? {
                if !accounts.iter().any(|b| b.id == a.id) {
                    accounts.push(a);
                }
            }
            next.extend(api.units_in(&unit).await?);
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(accounts)
}

/// [`OrgApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkOrg {
    client: aws_sdk_organizations::Client,
}

impl SdkOrg {
    /// From an SDK configuration (the management account's credentials).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_organizations::Client::new(sdk) }
    }
}

fn account_of(a: &aws_sdk_organizations::types::Account) -> OrgAccount {
    let state = match (a.state(), a.status()) {
        (Some(state), _) => state.as_str().to_owned(),
        (None, Some(status)) => status.as_str().to_owned(),
        (None, None) => String::new(),
    };
    OrgAccount { id: a.id().unwrap_or_default().to_owned(), name: a.name().unwrap_or_default().to_owned(), state }
}

fn next(token: Option<&str>, previous: &Option<String>, operation: &'static str) -> Result<Option<String>, ApiError> {
    match token.filter(|t| !t.is_empty()) {
        Some(t) if previous.as_deref() == Some(t) => {
            Err(ApiError::new(operation, None, "the service answered the same NextToken twice", None))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

#[async_trait]
impl OrgApi for SdkOrg {
    async fn accounts(&self) -> Result<Vec<OrgAccount>, ApiError> {
        let mut accounts = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_accounts()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("organizations:ListAccounts", e))?;
            accounts.extend(out.accounts().iter().map(account_of));
            match next(out.next_token(), &token, "organizations:ListAccounts")? {
                Some(t) => token = Some(t),
                None => return Ok(accounts),
            }
        }
    }

    async fn accounts_in(&self, parent: &str) -> Result<Vec<OrgAccount>, ApiError> {
        let mut accounts = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_accounts_for_parent()
                .parent_id(parent)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("organizations:ListAccountsForParent", e))?;
            accounts.extend(out.accounts().iter().map(account_of));
            match next(out.next_token(), &token, "organizations:ListAccountsForParent")? {
                Some(t) => token = Some(t),
                None => return Ok(accounts),
            }
        }
    }

    async fn units_in(&self, parent: &str) -> Result<Vec<String>, ApiError> {
        let mut units = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_organizational_units_for_parent()
                .parent_id(parent)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("organizations:ListOrganizationalUnitsForParent", e))?;
            units.extend(out.organizational_units().iter().filter_map(|u| u.id().map(str::to_owned)));
            match next(out.next_token(), &token, "organizations:ListOrganizationalUnitsForParent")? {
                Some(t) => token = Some(t),
                None => return Ok(units),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nested_units_are_followed_and_each_account_listed_once() -> Result<(), ApiError> {
        let mut api = MockOrgApi::new();
        let account = |id: &str| OrgAccount { id: id.into(), name: id.into(), state: "ACTIVE".into() };
        api.expect_accounts_in().returning(move |unit| {
            Ok(match unit {
                "ou-a" => vec![account("1"), account("2")],
                "ou-b" => vec![account("2"), account("3")],
                _ => vec![account("4")],
            })
        });
        api.expect_units_in().returning(|unit| Ok(if unit == "ou-a" { vec!["ou-a-child".into()] } else { Vec::new() }));
        let found = accounts_under(&api, &["ou-a".into(), "ou-b".into()]).await?;
        let ids: Vec<&str> = found.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4"]);
        Ok(())
    }
}
