//! Test support shared by the crates' tests: servers that speak the real
//! wire format of the systems compliance-rs talks to, on loopback.
//!
//! - [`kube_api`]: a Kubernetes API server for the calls compliance-k8s
//!   makes (no real API server can be installed on the build machines).
//! - [`moto`]: moto server with the patches listed in `moto/patched_moto.py`,
//!   for the AWS SDK over HTTP.
//! - [`tls`]: a test certificate and an HTTPS client, for the webhook.
//! - [`sink`]: a webhook receiver, for alerts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is right

#[cfg(feature = "kube-api")]
pub mod kube_api;
pub mod moto;
#[cfg(feature = "sink")]
pub mod sink;
#[cfg(feature = "tls")]
pub mod tls;
