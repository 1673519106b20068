//! Custom endpoints given as an IPv4 address or `localhost` (an emulator, a
//! private proxy).
//!
//! S3 Control puts the account id in the host name: with an endpoint
//! `http://10.0.0.5:4566` the SDK calls `http://123456789012.10.0.0.5:4566`,
//! a name no DNS server knows. [`AccountHosts`] answers such names with the
//! endpoint's address (`<label>.localhost` with the loopback address, as
//! RFC 6761 reserves it), and every other name with the system resolver;
//! [`http_client`] is an SDK HTTP client that uses it. An IPv6 address
//! cannot take a prefix (`123.[::1]` is no host name): use a name there.

use std::net::{IpAddr, Ipv4Addr};

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Resolves `<label>.<endpoint host>` to the endpoint's address; any other
/// name through the system resolver.
#[derive(Clone, Debug)]
pub struct AccountHosts {
    /// The endpoint's host as written (`10.0.0.5`, `localhost`).
    host: String,
    address: IpAddr,
}

impl AccountHosts {
    /// For an endpoint at this IPv4 address.
    pub fn new(endpoint: Ipv4Addr) -> Self {
        Self { host: endpoint.to_string(), address: IpAddr::V4(endpoint) }
    }

    /// For the endpoint URL, when its host is an IPv4 address or `localhost`.
    pub fn for_endpoint(url: &str) -> Option<Self> {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
        if host.eq_ignore_ascii_case("localhost") {
            return Some(Self { host: "localhost".into(), address: IpAddr::V4(Ipv4Addr::LOCALHOST) });
        }
        host.parse::<Ipv4Addr>().ok().map(Self::new)
    }

    /// The address a name resolves to without asking DNS, if it is ours.
    fn known(&self, name: &str) -> Option<IpAddr> {
        let (_, rest) = name.split_once('.')?;
        rest.eq_ignore_ascii_case(&self.host).then_some(self.address)
    }
}

impl ResolveDns for AccountHosts {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        if let Some(address) = self.known(name) {
            return DnsFuture::ready(Ok(vec![address]));
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
    fn the_endpoint_host_is_found_in_every_url_shape_and_only_its_prefixed_names_are_answered() {
        let hosts = |url: &str| AccountHosts::for_endpoint(url);
        let known = |url: &str, name: &str| hosts(url).and_then(|h| h.known(name)).map(|a| a.to_string());
        assert_eq!(known("http://127.0.0.1:5000", "123456789012.127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(known("https://10.0.0.5/path", "123456789012.10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(known("http://LOCALHOST:4566", "123456789012.localhost").as_deref(), Some("127.0.0.1"));
        assert_eq!(known("http://127.0.0.1:5000", "123456789012.10.9.8.7"), None, "another address: DNS decides");
        assert_eq!(known("http://127.0.0.1:5000", "127.0.0.1"), None);
        assert!(hosts("http://[::1]:4566").is_none(), "an IPv6 address takes no prefix");
        assert!(hosts("https://vpce-1.s3.eu-west-1.vpce.amazonaws.com").is_none(), "a name: DNS knows its subdomains");
    }
}
