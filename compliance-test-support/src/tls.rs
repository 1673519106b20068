//! HTTPS on loopback: a test certificate authority's certificate for
//! `localhost`/`127.0.0.1`, and a client that trusts only it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files.
pub struct TestCert {
    /// `tls.crt`.
    pub cert: PathBuf,
    /// `tls.key`.
    pub key: PathBuf,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
}

impl TestCert {
    /// Generates a certificate and writes `tls.crt` and `tls.key` into `dir`.
    pub fn write(dir: &Path) -> TestCert {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = dir.join("tls.crt");
        let key = dir.join("tls.key");
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        TestCert { cert, key, der: generated.cert.der().clone() }
    }
}

/// A response: status, body, and the certificate the server presented.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// The server's leaf certificate.
    pub server_cert: CertificateDer<'static>,
}

/// Sends one request over TLS to `addr`, trusting only `trusted`.
pub async fn request(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    request_as(addr, trusted, None, method, path, body).await
}

async fn send(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    method: &str,
    path: &str,
    body: &str,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = connector.connect(ServerName::try_from("localhost")?, tcp).await?;
    let server_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned().ok_or("no certificate")?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Response { status, body: String::from_utf8_lossy(&bytes).into_owned(), server_cert })
}

/// A test certificate authority and a client certificate it signed, written
/// as PEM files: for servers that demand client certificates (mTLS).
pub struct TestClientCa {
    /// The CA certificate (`client-ca.crt`): what the server trusts.
    pub ca: PathBuf,
    /// The client's certificate chain, DER.
    pub client_chain: Vec<CertificateDer<'static>>,
    /// The client's private key, PKCS#8 DER.
    pub client_key: Vec<u8>,
}

impl TestClientCa {
    /// Generates a CA and a client certificate for `client_name`, and writes
    /// the CA certificate into `dir`.
    pub fn write(dir: &Path, client_name: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test client CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let client_key = rcgen::KeyPair::generate()?;
        let mut client_params = rcgen::CertificateParams::new(vec![client_name.to_owned()])?;
        client_params.distinguished_name.push(rcgen::DnType::CommonName, client_name);
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer)?;
        let ca = dir.join("client-ca.crt");
        std::fs::write(&ca, ca_cert.pem())?;
        Ok(Self { ca, client_chain: vec![client_cert.der().clone()], client_key: client_key.serialize_der() })
    }
}

/// [`request`], presenting a client certificate when `identity` is given.
pub async fn request_as(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    identity: Option<&TestClientCa>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(id.client_key.clone().into());
            builder.with_client_auth_cert(id.client_chain.clone(), key)?
        }
    };
    send(addr, config, method, path, body).await
}

/// A TLS connection to `addr` that trusts only `trusted`, for tests that
/// write raw bytes (slow or partial requests).
pub async fn connect(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    Ok(connector.connect(ServerName::try_from("localhost")?, tcp).await?)
}
