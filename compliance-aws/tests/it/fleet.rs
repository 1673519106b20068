//! An organization of 20 accounts over 3 regions in one collection, against moto.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use compliance_aws::AwsConfig;
use compliance_aws::fleet::FleetCollector;
use compliance_core::{Collector, Engine, GapKind, Scope, Status, TargetKind};
use serde_json::json;

use crate::{TestResult, config_rule as rule, moto, sdk};

const ROLE: &str = "ComplianceAudit";
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];

/// The SDK configuration acting in `account`, through the audit role (moto maps the role's keys to its account).
async fn as_account(base: &SdkConfig, account: &str, region: &str) -> Result<SdkConfig, Box<dyn std::error::Error>> {
    let sts = aws_sdk_sts::Client::new(base);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{ROLE}"))
        .role_session_name("seed")
        .send()
        .await?;
    let c = out.credentials().ok_or("no credentials")?;
    let creds = aws_sdk_iam::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "seed",
    );
    Ok(base
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .region(aws_config::Region::new(region.to_owned()))
        .build())
}

/// An organization of the management account and `members` accounts named
/// `team-01`, ...: every account id with its name, the management account first.
async fn organization(base: &SdkConfig, members: usize) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let org = aws_sdk_organizations::Client::new(base);
    org.create_organization().feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All).send().await?;
    let mut accounts = vec![("123456789012".to_owned(), "management".to_owned())];
    for n in 1..=members {
        let name = format!("team-{n:02}");
        let created = org.create_account().account_name(&name).email(format!("{name}@example.com")).send().await?;
        let id = created.create_account_status().and_then(|s| s.account_id()).ok_or("no account id")?.to_owned();
        accounts.push((id, name));
    }
    Ok(accounts)
}

/// The provider's settings for the organization through the audit role, in these regions.
fn org_config(moto: &compliance_test_support::moto::Moto, regions: &[&str]) -> AwsConfig {
    let mut config = AwsConfig::default();
    config.account = true;
    config.organization = true;
    config.role_name = Some(ROLE.into());
    config.regions = regions.iter().map(|r| (*r).to_owned()).collect();
    config.endpoint_url = Some(moto.endpoint());
    config
}

/// One run of the fleet these settings describe.
async fn scan_fleet(base: &SdkConfig, config: &AwsConfig) -> Result<compliance_core::Run, Box<dyn std::error::Error>> {
    let fleet = FleetCollector::new(base, config.fleet()?, compliance_aws::account_collectors(config));
    Ok(Engine::new().with_collector(std::sync::Arc::new(fleet)).run(&Scope::all()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn an_organization_of_20_accounts_and_3_regions_is_one_collection_with_one_gap_for_a_refused_role() -> TestResult
{
    let moto = moto()?;
    let base = sdk(&moto, "us-east-1").await;
    let names: BTreeMap<String, String> = organization(&base, 19).await?.into_iter().collect();
    assert_eq!(names.len(), 20);
    let refused = names.iter().find(|(_, n)| *n == "team-07").map(|(id, _)| id.clone()).ok_or("no team-07")?;

    // Seed each account: 2 users, a bucket named after it, Config rules in two of the three regions.
    for id in names.keys() {
        let account = as_account(&base, id, "us-east-1").await?;
        let iam = aws_sdk_iam::Client::new(&account);
        for user in ["alice", "bob"] {
            iam.create_user().user_name(user).send().await?;
        }
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&account).force_path_style(true).build());
        s3.create_bucket().bucket(format!("logs-{id}")).send().await?;
        for region in &REGIONS[..2] {
            let regional = as_account(&base, id, region).await?;
            let config = aws_sdk_config::Client::new(&regional);
            rule(&config, "s3-bucket-versioning-enabled", "S3_BUCKET_VERSIONING_ENABLED").await?;
            moto.put_config_evaluations(&json!({ "account": id, "region": region, "rule": "s3-bucket-versioning-enabled",
                "results": [{ "ResourceType": "AWS::S3::Bucket", "ResourceId": format!("logs-{id}"),
                              "ComplianceType": if region == &"eu-west-1" { "COMPLIANT" } else { "NON_COMPLIANT" } }] }))?;
        }
    }
    moto.refuse_roles(&[&format!("arn:aws:iam::{refused}:role/{ROLE}")])?;
    moto.page_sizes(&json!({ "ListAccounts": 8 }))?;
    moto.reset_calls()?;

    let run = scan_fleet(&base, &org_config(&moto, &REGIONS)).await?;

    // The refused account is exactly one gap, naming it; nothing else is missing.
    assert_eq!(run.gaps.len(), 1, "{:#?}", run.gaps);
    let gap = &run.gaps[0];
    assert_eq!((gap.kind, gap.target.clone()), (GapKind::Denied, Some(format!("aws:{refused}"))));
    assert!(gap.source.as_deref().is_some_and(|s| s.contains("team-07")), "{gap:?}");
    assert!(gap.reason.contains("cannot be used"), "{}", gap.reason);

    // Every evidence names its account, and it is the right one.
    let scanned: BTreeSet<&String> = names.keys().filter(|id| **id != refused).collect();
    let mut by_account: BTreeMap<String, usize> = BTreeMap::new();
    for e in &run.evidence {
        let account = e.resource.account.clone().ok_or_else(|| format!("no account on {:?}", e.resource))?;
        assert!(scanned.contains(&account), "{account}");
        if e.resource.id.starts_with("arn:aws:iam::") {
            assert!(e.resource.id.contains(&account), "{} in {account}", e.resource.id);
        }
        if e.resource.kind == "AWS::S3::Bucket"
            || e.check_id.as_str().starts_with("aws.s3.") && e.resource.name.starts_with("logs-")
        {
            assert_eq!(e.resource.name, format!("logs-{account}"));
        }
        *by_account.entry(account).or_default() += 1;
    }
    assert_eq!(by_account.len(), 19, "every account but the refused one");
    // Members are seeded alike (and moto gives each an OrganizationAccountAccessRole): alike evidence.
    let members: BTreeSet<usize> = by_account.iter().filter(|(a, _)| *a != "123456789012").map(|(_, n)| *n).collect();
    assert_eq!(members.len(), 1, "{by_account:?}");

    // One evidence per check and resource id across the fleet: ids are unique per account and region.
    let keys: BTreeSet<(&str, &str)> =
        run.evidence.iter().map(|e| (e.check_id.as_str(), e.resource.id.as_str())).collect();
    assert_eq!(keys.len(), run.evidence.len());

    // Regional work per region: Config results in two regions, none in the third; the recorder in all three.
    let config_rule = |region: &str| {
        run.evidence
            .iter()
            .filter(|e| {
                e.check_id.as_str() == "aws.config.s3-bucket-versioning-enabled"
                    && e.resource.region.as_deref() == Some(region)
            })
            .map(|e| e.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(config_rule("eu-west-1"), vec![Status::Pass; 19]);
    assert_eq!(config_rule("us-east-1"), vec![Status::Fail; 19]);
    assert!(config_rule("ap-southeast-2").is_empty());
    let recorders = run.evidence.iter().filter(|e| e.check_id.as_str() == "aws.config.recorder_enabled").count();
    assert_eq!(recorders, 19 * 3);
    // Global work once per account: one credential report each.
    let calls = moto.calls()?;
    assert_eq!(calls["iam:GetCredentialReport"], 19, "{calls}");
    assert_eq!(calls["organizations:ListAccounts"], 3, "20 accounts in pages of 8: {calls}");

    // The targets: 20 accounts (names from the organization) and 19 x 3 regions.
    let accounts: Vec<_> = run.targets.iter().filter(|t| t.kind == TargetKind::AwsAccount).collect();
    assert_eq!(accounts.len(), 20);
    assert!(accounts.iter().any(|t| t.id == format!("aws:{refused}") && t.name.as_deref() == Some("team-07")));
    assert_eq!(run.targets.iter().filter(|t| t.kind == TargetKind::AwsRegion).count(), 19 * 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn regions_all_means_the_regions_enabled_for_each_account_and_shards_split_the_accounts() -> TestResult {
    let moto = moto()?;
    let base = sdk(&moto, "us-east-1").await;
    moto.enable_regions("123456789012", &["eu-west-1", "eu-south-1"])?;
    let mut config = AwsConfig::default();
    config.account = true;
    config.regions = vec!["all".into()];
    config.endpoint_url = Some(moto.endpoint());
    let fleet = FleetCollector::new(&base, config.fleet()?, compliance_aws::account_collectors(&config));
    let c = fleet.collect(&Scope::only(["aws.config.recorder_enabled"])).await?;
    let regions: BTreeSet<_> = c.evidence.iter().filter_map(|e| e.resource.region.clone()).collect();
    assert_eq!(regions, BTreeSet::from(["eu-south-1".to_owned(), "eu-west-1".to_owned()]));
    assert!(c.gaps.is_empty(), "{:?}", c.gaps);

    // A region the account has not enabled is one gap naming it; the others are judged.
    config.regions = vec!["eu-west-1".into(), "ap-east-1".into()];
    let fleet = FleetCollector::new(&base, config.fleet()?, compliance_aws::account_collectors(&config));
    let c = fleet.collect(&Scope::all()).await?;
    assert_eq!(c.gaps.len(), 1, "{:#?}", c.gaps);
    assert_eq!(c.gaps[0].target.as_deref(), Some("aws:123456789012:ap-east-1"));
    assert!(c.gaps[0].reason.contains("UnrecognizedClientException"), "{}", c.gaps[0].reason);
    assert!(c.evidence.iter().any(|e| e.resource.region.as_deref() == Some("eu-west-1")));
    config.regions = vec!["all".into()];

    // Two shards of one account: exactly one of them scans it.
    let mut scanned = 0;
    for k in 0..2 {
        config.shard = Some(format!("{k}/2").parse()?);
        let fleet = FleetCollector::new(&base, config.fleet()?, compliance_aws::account_collectors(&config));
        let c = fleet.collect(&Scope::only(["aws.config.recorder_enabled"])).await?;
        scanned += usize::from(!c.evidence.is_empty());
    }
    assert_eq!(scanned, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn an_aggregator_gives_every_accounts_results_by_identifier_without_calling_each_account() -> TestResult {
    use compliance_aws::config_rules::AggregatorCollector;

    let moto = moto()?;
    let base = sdk(&moto, "us-east-1").await;
    let ids: Vec<String> = organization(&base, 2).await?.into_iter().map(|(id, _)| id).collect();
    // In each account and region, Security Hub's copy of a managed rule with 3 results.
    for id in &ids {
        for region in ["eu-west-1", "us-east-1"] {
            let account = as_account(&base, id, region).await?;
            let config = aws_sdk_config::Client::new(&account);
            rule(&config, "securityhub-s3-bucket-versioning-enabled-a1b2c3", "S3_BUCKET_VERSIONING_ENABLED").await?;
            let results: Vec<_> = (0..3)
                .map(|i| {
                    json!({ "ResourceType": "AWS::S3::Bucket", "ResourceId": format!("b{i}-{id}"),
                                 "ComplianceType": if i == 0 { "NON_COMPLIANT" } else { "COMPLIANT" } })
                })
                .collect();
            moto.put_config_evaluations(&json!({ "account": id, "region": region,
                "rule": "securityhub-s3-bucket-versioning-enabled-a1b2c3", "results": results }))?;
        }
    }
    let config = aws_sdk_config::Client::new(&base);
    let source = aws_sdk_config::types::AccountAggregationSource::builder()
        .set_account_ids(Some(ids.clone()))
        .all_aws_regions(true)
        .build()?;
    config
        .put_configuration_aggregator()
        .configuration_aggregator_name("org")
        .account_aggregation_sources(source)
        .send()
        .await?;
    moto.page_sizes(
        &json!({ "DescribeAggregateComplianceByConfigRules": 4, "GetAggregateComplianceDetailsByConfigRule": 2 }),
    )?;
    moto.reset_calls()?;

    let c = AggregatorCollector::new(&base, "org").collect(&Scope::all()).await?;
    assert!(c.gaps.is_empty(), "{:?}", c.gaps);
    assert_eq!(c.evidence.len(), 3 * 2 * 3, "every result of every account and region");
    let ids_seen: BTreeSet<String> = c.evidence.iter().filter_map(|e| e.resource.account.clone()).collect();
    assert_eq!(ids_seen, ids.iter().cloned().collect());
    for e in &c.evidence {
        assert_eq!(e.check_id.as_str(), "aws.config.s3-bucket-versioning-enabled", "filed under the identifier");
        assert!(e.resource.name.ends_with(e.resource.account.as_deref().unwrap_or("?")), "{:?}", e.resource);
        assert!(e.resource.region.is_some());
        assert_eq!(e.details["aggregator"], "org");
    }
    assert_eq!(c.evidence.iter().filter(|e| e.status == Status::Fail).count(), 6);
    let calls = moto.calls()?;
    assert_eq!(calls["config:DescribeAggregateComplianceByConfigRules"], 2, "6 rows in pages of 4: {calls}");
    assert_eq!(calls["config:GetAggregateComplianceDetailsByConfigRule"], 6 * 2, "3 results in pages of 2: {calls}");
    assert!(calls.get("config:GetComplianceDetailsByConfigRule").is_none(), "no account is called: {calls}");

    // An unknown aggregator fails the collection, naming it.
    let unknown = AggregatorCollector::new(&base, "nope").collect(&Scope::all()).await;
    assert!(unknown.err().is_some_and(|e| e.to_string().contains("NoSuchConfigurationAggregatorException")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn throttling_across_the_fleet_is_retried_and_loses_nothing() -> TestResult {
    let moto = moto()?;
    // Retries are concurrent, so a retry can meet the next injected fault: enough attempts that
    // one call meeting them all is out of reach (the scan's default is 5, --aws-max-attempts).
    let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(10);
    let base = sdk(&moto, "us-east-1").await.to_builder().retry_config(retries).build();
    organization(&base, 3).await?;
    let config = org_config(&moto, &["eu-west-1", "us-east-1"]);
    let calm = scan_fleet(&base, &config).await?;
    assert!(calm.gaps.is_empty(), "{:?}", calm.gaps);
    // Every 5th call throttled, as organization-wide API limits do: the SDK's backoff absorbs it.
    moto.faults(&json!({ "every": 5, "status": 429 }))?;
    let throttled = scan_fleet(&base, &config).await?;
    assert!(moto.faults_injected()? > 10, "throttling happened");
    assert!(throttled.gaps.is_empty(), "{:?}", throttled.gaps);
    assert_eq!(throttled.evidence.len(), calm.evidence.len());
    let errors: Vec<&str> =
        throttled.evidence.iter().filter(|e| e.status == Status::Error).map(|e| e.message.as_str()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn assumed_credentials_about_to_expire_are_renewed_during_the_scan() -> TestResult {
    let moto = moto()?;
    let base = sdk(&moto, "us-east-1").await;
    organization(&base, 1).await?;
    let config = org_config(&moto, &["eu-west-1", "us-east-1"]);
    moto.reset_calls()?;
    let lasting = scan_fleet(&base, &config).await?;
    let assumed_once = moto.calls()?["sts:AssumeRole"].as_u64().unwrap_or(0);
    assert_eq!(assumed_once, 1, "one member account, its role assumed once");
    // Credentials that expire within the SDK's renewal margin are assumed again before use.
    moto.credential_lifetime(2)?;
    moto.reset_calls()?;
    let renewed = scan_fleet(&base, &config).await?;
    let assumed = moto.calls()?["sts:AssumeRole"].as_u64().unwrap_or(0);
    assert!(assumed > 1, "renewed during the scan: {assumed} AssumeRole calls");
    assert!(renewed.gaps.is_empty(), "{:?}", renewed.gaps);
    assert_eq!(renewed.evidence.len(), lasting.evidence.len());
    Ok(())
}
