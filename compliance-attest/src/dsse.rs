//! DSSE (Dead Simple Signing Envelope, <https://github.com/secure-systems-lab/dsse>):
//! the signature covers the payload type and the payload bytes through the
//! pre-authentication encoding, so neither can be swapped.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::{Keyring, Problem, PublicKey, SigningKey};

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in bytes, in decimal without leading zeros.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope as JSON (`payload` and `sig` in standard base64).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The payload, base64.
    pub payload: String,
    /// What the payload is.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// One signature per key.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's fingerprint (a hint: the signature decides).
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

/// What a verified envelope holds, and who signed it.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The payload's bytes.
    pub payload: Vec<u8>,
    /// The key whose signature verified.
    pub key: PublicKey,
}

impl Envelope {
    /// Signs `payload` as `payload_type`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Self {
        let sig = key.sign(&pae(payload_type, payload));
        Self {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![EnvelopeSignature { keyid: key.fingerprint().to_owned(), sig: STANDARD.encode(sig) }],
        }
    }

    /// Checks that a key of `keyring` signed it and returns the payload.
    /// `what` names the envelope in problems. Validity periods are checked
    /// by the caller, against the time the payload states.
    pub fn verify(&self, keyring: &Keyring, what: &str) -> Result<Verified, Problem> {
        let malformed = |message: String| Problem::Malformed { what: what.to_owned(), message };
        let payload = STANDARD.decode(&self.payload).map_err(|e| malformed(format!("payload is not base64: {e}")))?;
        let message = pae(&self.payload_type, &payload);
        for signature in &self.signatures {
            let Ok(sig) = STANDARD.decode(&signature.sig) else { continue };
            // The key id is only a hint: try it first, then every key.
            let hinted = keyring.keys().filter(|k| k.fingerprint() == signature.keyid);
            let others = keyring.keys().filter(|k| k.fingerprint() != signature.keyid);
            if let Some(key) = hinted.chain(others).find(|k| k.verify(&message, &sig)) {
                return Ok(Verified { payload, key: key.clone() });
            }
        }
        let keys = self.signatures.iter().map(|s| s.keyid.as_str()).collect::<Vec<_>>().join(", ");
        Err(Problem::BadSignature { what: what.to_owned(), keys: if keys.is_empty() { "none".into() } else { keys } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specifications_example() {
        // protocol.md of secure-systems-lab/dsse, "Test Vectors".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        // Lengths count bytes, not characters.
        assert_eq!(pae("t", "é".as_bytes()), "DSSEv1 1 t 2 é".as_bytes());
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn ed25519_signs_rfc_8032s_first_test_vector() -> Result<(), crate::AttestError> {
        // RFC 8032, section 7.1, TEST 1: the secret key as an RFC 8410 PKCS#8 v1 document.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let der: Vec<u8> = format!("302e020100300506032b657004220420{seed}")
            .as_bytes()
            .chunks(2)
            .filter_map(|h| std::str::from_utf8(h).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        let key = SigningKey::from_pem(&pem::encode(&pem::Pem::new("PRIVATE KEY", der)), "rfc8032")?;
        let signature: String = key.sign(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            signature,
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        Ok(())
    }

    #[test]
    fn an_envelope_verifies_with_its_key_only_and_not_once_changed() -> Result<(), crate::AttestError> {
        let key = SigningKey::generate()?;
        let other = SigningKey::generate()?;
        let envelope = Envelope::sign("text/plain", b"hello", &key);
        let verified = envelope
            .verify(&Keyring::single(key.public_key().clone()), "e")
            .map_err(|p| crate::AttestError::Invalid(p.to_string()))?;
        assert_eq!(verified.payload, b"hello");
        assert!(matches!(
            envelope.verify(&Keyring::single(other.public_key().clone()), "e"),
            Err(Problem::BadSignature { .. })
        ));
        let mut retyped = envelope.clone();
        retyped.payload_type = "text/html".into();
        assert!(retyped.verify(&Keyring::single(key.public_key().clone()), "e").is_err());
        let mut changed = envelope;
        changed.payload = STANDARD.encode(b"hellO");
        assert!(changed.verify(&Keyring::single(key.public_key().clone()), "e").is_err());
        Ok(())
    }
}
