//! Our IAM access review against the approach of the blog post the project grew from (ARCHITECTURE.md), side by side,
//! against the same moto server with N users (default 1,000): time, API
//! calls, users seen.
//!
//! ```text
//! cargo run --release -p compliance-benches --bin iam_review_vs_article -- 1000
//! ```
//! Needs the moto virtual environment that `.ci/run` creates.

#![allow(clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::time::Instant;

use aws_config::{BehaviorVersion, Region};
use compliance_aws::iam::{IamCollector, IamConfig};
use compliance_core::{Collector, Scope, Status};
use compliance_test_support::moto::Moto;
use futures::StreamExt;

fn api_calls(moto: &Moto, prefix: &str) -> u64 {
    let calls = moto.calls().expect("call counters");
    calls
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.starts_with(prefix)).filter_map(|(_, v)| v.as_u64()).sum())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let users: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let moto = Moto::start().expect("moto is not installed; run scripts/test first");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let started = Instant::now();
    futures::stream::iter(0..users)
        .map(|i| {
            let iam = iam.clone();
            async move {
                let name = format!("user-{i:05}");
                iam.create_user().user_name(&name).send().await.expect("create user");
                if i % 2 == 0 {
                    iam.create_login_profile()
                        .user_name(&name)
                        .password("Pa55word!x")
                        .send()
                        .await
                        .expect("login profile");
                }
                if i % 3 == 0 {
                    iam.create_access_key().user_name(&name).send().await.expect("access key");
                }
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    println!("seeded {users} users in {:.1} s\n", started.elapsed().as_secs_f64());
    println!("{:<46} {:>10} {:>10} {:>10} {:>9}", "approach", "users seen", "API calls", "judged", "time");

    // compliance-rs: one credential report for every user.
    moto.reset_calls().expect("reset");
    let start = Instant::now();
    let collection = IamCollector::new(&sdk, IamConfig::default())
        .collect(&Scope::only(["aws.iam.user_inactive"]))
        .await
        .expect("review");
    let elapsed = start.elapsed();
    let judged = collection.evidence.iter().filter(|e| e.status != Status::Error).count();
    println!(
        "{:<46} {:>10} {:>10} {:>10} {:>8.3}s",
        "compliance-rs (credential report)",
        collection.evidence.len(),
        api_calls(&moto, "iam:"),
        judged,
        elapsed.as_secs_f64()
    );

    // The blog post's way: ListUsers once, without paging, then GetUser per user.
    for paginate in [false, true] {
        moto.reset_calls().expect("reset");
        let start = Instant::now();
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            let page = iam.list_users().set_marker(marker.take()).send().await.expect("list users");
            names.extend(page.users().iter().map(|u| u.user_name().to_owned()));
            match (paginate, page.marker()) {
                (true, Some(m)) if page.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        let mut with_password_use = 0;
        for name in &names {
            let user = iam.get_user().user_name(name).send().await.expect("get user");
            if user.user().and_then(|u| u.password_last_used()).is_some() {
                with_password_use += 1;
            }
        }
        let label = if paginate {
            "blog post's way, with paging added"
        } else {
            "blog post's way (ListUsers once + GetUser per user)"
        };
        println!(
            "{:<46} {:>10} {:>10} {:>10} {:>8.3}s",
            label,
            names.len(),
            api_calls(&moto, "iam:"),
            with_password_use,
            start.elapsed().as_secs_f64()
        );
    }
    println!("\n`judged`: users whose activity could be judged. That way reads only PasswordLastUsed,");
    println!("so users without a password, with unused keys or never logged in are never judged.");
}
