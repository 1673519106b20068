//! A report shared by the output tests: every status, two namespaces, a
//! manifest without a namespace, a waiver, and an AWS resource.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use compliance_core::testkit::{InMemoryCollector, World, sample_check};
use compliance_core::{Control, Engine, Evidence, FrameworkDef, ResourceRef, Scope, Status, Waiver};
use compliance_report::Report;

pub fn k8s(kind: &str, namespace: Option<&str>, name: &str) -> ResourceRef {
    let id = format!("m.yaml#0/{}/{kind}/{name}", namespace.unwrap_or("-"));
    let r = ResourceRef::new("k8s", kind, id, name).with_file("m.yaml", Some(3));
    match namespace {
        Some(ns) => r.with_namespace(ns),
        None => r,
    }
}

/// A report whose evidence covers every status, two namespaces, a manifest
/// without a namespace, and an AWS resource.
pub async fn mixed_report() -> Result<Report, Box<dyn std::error::Error>> {
    let world = World::default();
    world.set("x", "k8s.demo.waived", false);
    let checks = vec![sample_check("k8s.demo.waived")?];
    let engine = Engine::new()
        .with_collector(Arc::new(InMemoryCollector::new("mem", checks, world)))
        .with_framework(Arc::new(FrameworkDef::new(
            "soc2",
            "SOC 2",
            "2017",
            vec![
                Control::new("CC6.1", "Logical access", vec!["k8s.demo.privileged".parse()?, "aws.demo.mfa".parse()?]),
                Control::new("CC6.8", "Malicious software", vec!["k8s.demo.privileged".parse()?]),
            ],
        )))
        .with_framework(Arc::new(FrameworkDef::new(
            "pci-dss",
            "PCI DSS",
            "4.0",
            vec![Control::new("2.2.5", "Insecure services", vec!["k8s.demo.privileged".parse()?])],
        )))
        .with_waivers([Waiver::new(
            "W-7",
            "k8s.demo.waived",
            "*",
            "accepted",
            "owner",
            Utc::now() + Duration::days(1),
        )]);
    let mut report = Report::from_run(&engine.run(&Scope::all()).await, engine.frameworks());
    let mut waived = report.evidence.pop().ok_or("no waived evidence")?;
    waived.resource = Arc::new(k8s("Deployment", Some("shop"), "cart"));
    let privileged = sample_check("k8s.demo.privileged")?;
    let mfa = sample_check("aws.demo.mfa")?;
    let at = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().ok_or("time")?;
    report.evidence = vec![
        Evidence::new(&privileged, k8s("Deployment", Some("shop"), "api"), Status::Fail, "container api is privileged")
            .observed_at(at + Duration::nanoseconds(250)),
        Evidence::new(&privileged, k8s("Pod", Some("ops"), "debug"), Status::Pass, "no privileged container"),
        Evidence::new(&privileged, k8s("StatefulSet", None, "db"), Status::Error, "spec.template: unreadable"),
        Evidence::new(&privileged, k8s("Job", Some("ops"), "once"), Status::NotApplicable, "no pod template"),
        waived,
        Evidence::new(
            &mfa,
            ResourceRef::new("aws", "IAMUser", "arn:aws:iam::123456789012:user/alice", "alice")
                .with_account_region(Some("123456789012".into()), None),
            Status::Fail,
            "console password without MFA",
        ),
    ];
    Ok(report)
}
