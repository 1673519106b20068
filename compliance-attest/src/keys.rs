//! Ed25519 keys in the forms other tools use: PKCS#8 PEM for private keys
//! (what `openssl genpkey -algorithm ed25519` writes) and SubjectPublicKeyInfo
//! PEM for public keys (`openssl pkey -pubout`). A key is named by its
//! fingerprint: the SHA-256 of its SubjectPublicKeyInfo DER, in hex, which
//! `openssl pkey -pubin -in key.pub -outform DER | sha256sum` also prints.

use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, ParsedPublicKey};

use crate::AttestError;
use crate::statement::sha256_hex;

/// Key files are a few hundred bytes; anything much larger is not a key.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Reads a key file (at most 64 KiB, a regular file).
pub fn read_key_file(path: &Path) -> Result<String, AttestError> {
    read_small(path)
}

pub(crate) fn read_small(path: &Path) -> Result<String, AttestError> {
    read_bounded(path, MAX_KEY_FILE)?
        .map_err(|refused| AttestError::Key { path: path.display().to_string(), message: refused })
}

/// Reads a regular text file (a link to one is followed) of at most `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<String, AttestError> {
    read_bounded(path, limit)?.map_err(|refused| AttestError::Invalid(format!("{}: {refused}", path.display())))
}

/// The outer error is I/O; the inner one why the file was refused unread.
fn read_bounded(path: &Path, limit: u64) -> Result<Result<String, String>, AttestError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| AttestError::io(path, e))?;
    if !meta.is_file() {
        return Ok(Err("not a regular file".into()));
    }
    let file = std::fs::File::open(path).map_err(|e| AttestError::io(path, e))?;
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text).map_err(|e| AttestError::io(path, e))?;
    if text.len() as u64 > limit {
        return Ok(Err(format!("larger than {limit} bytes")));
    }
    Ok(Ok(text))
}

fn one_pem(text: &str, tag: &str, path: &str) -> Result<Vec<u8>, AttestError> {
    let bad = |message: String| AttestError::Key { path: path.to_owned(), message };
    let pem = pem::parse(text).map_err(|e| bad(format!("not PEM: {e}")))?;
    if pem.tag() != tag {
        return Err(bad(format!("a PEM \"{}\" block, expected \"{tag}\"", pem.tag())));
    }
    Ok(pem.into_contents())
}

/// An Ed25519 private key. Its `Debug` shows only the fingerprint.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("fingerprint", &self.public.fingerprint).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, AttestError> {
        let pair = Ed25519KeyPair::generate()
            .map_err(|_| AttestError::Key { path: "(new key)".into(), message: "key generation failed".into() })?;
        Self::from_pair(pair, "(new key)")
    }

    fn from_pair(pair: Ed25519KeyPair, path: &str) -> Result<Self, AttestError> {
        let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().map_err(|_| AttestError::Key {
            path: path.to_owned(),
            message: "the public key cannot be encoded".into(),
        })?;
        let public = PublicKey::from_spki_der(spki.as_ref(), path)?;
        Ok(Self { pair, public })
    }

    /// From PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`, version 1 or 2);
    /// `path` names it in errors.
    pub fn from_pem(text: &str, path: &str) -> Result<Self, AttestError> {
        let der = one_pem(text, "PRIVATE KEY", path)?;
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| AttestError::Key {
            path: path.to_owned(),
            message: format!("not an Ed25519 PKCS#8 private key: {e}"),
        })?;
        Self::from_pair(pair, path)
    }

    /// Reads a PKCS#8 PEM file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, AttestError> {
        let path = path.as_ref();
        Self::from_pem(&read_small(path)?, &path.display().to_string())
    }

    /// PKCS#8 v1 PEM, the form OpenSSL writes and reads. Keep it secret.
    pub fn to_pem(&self) -> Result<String, AttestError> {
        let der: Pkcs8V1Der<'static> = self
            .pair
            .as_der()
            .map_err(|_| AttestError::Key { path: "(key)".into(), message: "the key cannot be encoded".into() })?;
        Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec())))
    }

    /// Writes the private key (mode 0600, a new file only) and the public
    /// key beside it.
    pub fn write_pair(&self, private: &Path, public: &Path) -> Result<(), AttestError> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(private).map_err(|e| AttestError::io(private, e))?;
        file.write_all(self.to_pem()?.as_bytes()).map_err(|e| AttestError::io(private, e))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        let mut file = options.open(public).map_err(|e| AttestError::io(public, e))?;
        file.write_all(self.public.to_pem().as_bytes()).map_err(|e| AttestError::io(public, e))
    }

    /// Its public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Its fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.public.fingerprint
    }

    /// Signs `message`: a 64-byte Ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// An Ed25519 public key.
#[derive(Clone)]
pub struct PublicKey {
    spki: Vec<u8>,
    parsed: ParsedPublicKey,
    fingerprint: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("fingerprint", &self.fingerprint).finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl PublicKey {
    fn from_spki_der(der: &[u8], path: &str) -> Result<Self, AttestError> {
        let parsed = ParsedPublicKey::new(&ED25519, der).map_err(|e| AttestError::Key {
            path: path.to_owned(),
            message: format!("not an Ed25519 public key: {e}"),
        })?;
        // A raw 32-byte key would parse too; only the SPKI form has one fingerprint.
        if der.len() == 32 {
            return Err(AttestError::Key {
                path: path.to_owned(),
                message: "a raw key, not a SubjectPublicKeyInfo".into(),
            });
        }
        Ok(Self { spki: der.to_vec(), parsed, fingerprint: sha256_hex(der) })
    }

    /// From SubjectPublicKeyInfo PEM text (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(text: &str, path: &str) -> Result<Self, AttestError> {
        Self::from_spki_der(&one_pem(text, "PUBLIC KEY", path)?, path)
    }

    /// Reads a public key PEM file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, AttestError> {
        let path = path.as_ref();
        Self::from_pem(&read_small(path)?, &path.display().to_string())
    }

    /// SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki.clone()))
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// True when `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_through_pem_and_signs() -> Result<(), AttestError> {
        let key = SigningKey::generate()?;
        let again = SigningKey::from_pem(&key.to_pem()?, "k")?;
        assert_eq!(again.fingerprint(), key.fingerprint());
        let public = PublicKey::from_pem(&key.public_key().to_pem(), "p")?;
        let signature = again.sign(b"message");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagE", &signature));
        assert!(!format!("{key:?}").contains("PRIVATE"));
        Ok(())
    }

    #[test]
    fn wrong_blocks_and_other_algorithms_are_named() {
        let public_as_private = SigningKey::generate()
            .map(|k| k.public_key().to_pem())
            .map(|pem| SigningKey::from_pem(&pem, "k.pem").err().map(|e| e.to_string()));
        assert_eq!(
            public_as_private.ok().flatten().as_deref(),
            Some("k.pem: a PEM \"PUBLIC KEY\" block, expected \"PRIVATE KEY\"")
        );
        let junk = PublicKey::from_pem("hello", "p.pem").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(junk.starts_with("p.pem: not PEM"), "{junk}");
    }
}
