//! The signature on every order Antibody sends and every result it takes
//! back: HMAC-SHA256 over `"{timestamp}.{body}"` with the shared secret
//! (`ANTIBODY_ACTUATOR_SECRET`), sent as
//! `Antibody-Signature: t={unix seconds},v1={hex}`. The timestamp is
//! signed too, so a captured request cannot be replayed later than
//! [`TOLERANCE_SECONDS`] (Stripe's scheme).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "antibody-signature";
/// How far a signature's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Signs and checks with one shared secret.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Antibody-Signature: missing")]
    Missing,
    #[error("Antibody-Signature: not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("Antibody-Signature: the timestamp is more than {TOLERANCE_SECONDS} s from now")]
    Stale,
    #[error("Antibody-Signature: does not match the body under the shared secret")]
    Mismatch,
}

impl Signer {
    /// A signer with `secret`, which must not be empty.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        let secret = secret.into();
        assert!(!secret.is_empty(), "an empty secret signs nothing");
        Self { secret }
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The header value for `body` sent at `timestamp` (unix seconds).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let digest = self.mac(timestamp, body).finalize().into_bytes();
        format!("t={timestamp},v1={}", hex::encode(digest))
    }

    /// Checks `header` against `body` at `now` (unix seconds), in constant
    /// time.
    pub fn verify(&self, header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let (mut timestamp, mut signature) = (None, None);
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", v)) => signature = hex::decode(v).ok(),
                _ => {}
            }
        }
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(SignatureError::Malformed);
        };
        if (now - timestamp).abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::Stale);
        }
        (self.mac(timestamp, body))
            .verify_slice(&signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_signature_checks_against_its_body_and_nothing_else() {
        let signer = Signer::new("s3cret");
        let header = signer.sign(1_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1000,v1="));
        assert_eq!(signer.verify(Some(&header), b"{\"a\":1}", 1_010), Ok(()));
        assert_eq!(
            signer.verify(Some(&header), b"{\"a\":2}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            Signer::new("other").verify(Some(&header), b"{\"a\":1}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            signer.verify(Some(&header), b"{\"a\":1}", 1_400),
            Err(SignatureError::Stale)
        );
        assert_eq!(signer.verify(None, b"", 0), Err(SignatureError::Missing));
        assert_eq!(signer.verify(Some("v1=zz"), b"", 0), Err(SignatureError::Malformed));
    }

    #[test]
    fn the_scheme_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let header = Signer::new("key").sign(1_700_000_000, b"{}");
        assert_eq!(
            header,
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    proptest! {
        #[test]
        fn every_signature_verifies_and_any_changed_byte_does_not(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flip in any::<prop::sample::Index>(),
        ) {
            let signer = Signer::new("k");
            let header = signer.sign(42, &body);
            prop_assert_eq!(signer.verify(Some(&header), &body, 42), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 1;
                prop_assert_eq!(signer.verify(Some(&header), &changed, 42), Err(SignatureError::Mismatch));
            }
        }
    }
}
