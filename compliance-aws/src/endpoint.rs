//! Custom endpoints given as an IP address (an emulator, a private proxy).
//!
//! S3 Control puts the account id in the host name: with an endpoint
//! `http://10.0.0.5:4566` the SDK calls `http://123456789012.10.0.0.5:4566`,
//! a name no DNS server knows. [`AccountHosts`] answers such names with the
//! address they end with, and every other name with the system resolver;
//! [`http_client`] is an SDK HTTP client that uses it.

use std::net::IpAddr;

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Resolves `<label>.<IP address>` to that address when it is one of the
/// endpoint's; any other name through the system resolver.
#[derive(Clone, Debug)]
pub struct AccountHosts {
    endpoint: IpAddr,
}

impl AccountHosts {
    /// For an endpoint at this address.
    pub fn new(endpoint: IpAddr) -> Self {
        Self { endpoint }
    }

    /// For the endpoint URL, when its host is an IP address.
    pub fn for_endpoint(url: &str) -> Option<Self> {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            // [v6]:port
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
        };
        host.parse().ok().map(Self::new)
    }
}

impl ResolveDns for AccountHosts {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        let prefixed = name.split_once('.').and_then(|(_, rest)| rest.parse::<IpAddr>().ok());
        if prefixed == Some(self.endpoint) {
            return DnsFuture::ready(Ok(vec![self.endpoint]));
        }
        DnsFuture::new(async move {
            let found = tokio::net::lookup_host((name, 0)).await.map_err(ResolveDnsError::new)?;
            Ok(found.map(|a| a.ip()).collect())
        })
    }
}

/// The SDK's default HTTPS client (rustls with aws-lc), resolving names
/// with [`AccountHosts`].
pub fn http_client(hosts: AccountHosts) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build_with_resolver(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_address_is_found_in_every_url_shape() {
        let ip = |url: &str| AccountHosts::for_endpoint(url).map(|h| h.endpoint.to_string());
        assert_eq!(ip("http://127.0.0.1:5000").as_deref(), Some("127.0.0.1"));
        assert_eq!(ip("https://10.0.0.5/path").as_deref(), Some("10.0.0.5"));
        assert_eq!(ip("http://[::1]:4566").as_deref(), Some("::1"));
        assert_eq!(ip("https://vpce-1.s3.eu-west-1.vpce.amazonaws.com"), None, "a name: DNS knows its subdomains");
    }

    #[tokio::test]
    async fn an_account_prefixed_endpoint_address_resolves_to_the_endpoint_only() {
        let hosts = AccountHosts::new("127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])));
        let found = hosts.resolve_dns("123456789012.127.0.0.1").await.ok();
        assert_eq!(found, Some(vec![IpAddr::from([127, 0, 0, 1])]));
        // Another address is not ours to answer: the system resolver refuses the name.
        assert!(hosts.resolve_dns("123456789012.10.9.8.7").await.is_err());
        assert_eq!(hosts.resolve_dns("localhost").await.ok().map(|a| a.is_empty()), Some(false));
    }
}
