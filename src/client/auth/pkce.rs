//! PKCE (RFC 7636) with the S256 method, and the random `state` of an authorization request.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A code verifier and its S256 challenge.
pub(crate) struct Pkce {
    /// 43 unreserved characters (32 random bytes, base64url): sent only to the token endpoint.
    pub verifier: Zeroizing<String>,
    /// `BASE64URL(SHA256(verifier))`, sent in the authorization request.
    pub challenge: String,
}

fn random_b64(n: usize) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    // getrandom failing leaves zeros, which would make the verifier guessable: refuse instead.
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*bytes))
}

/// The S256 challenge of `verifier`.
pub(crate) fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Pkce {
    pub(crate) fn new() -> Pkce {
        let verifier = random_b64(32);
        let challenge = challenge(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// A random `state` that ties the redirect to this request (CSRF protection).
pub(crate) fn state() -> String {
    random_b64(16).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    #[test]
    fn s256_of_the_rfc_example() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_long_unreserved_and_fresh() {
        let a = Pkce::new();
        let b = Pkce::new();
        assert_eq!(a.verifier.len(), 43);
        assert!(a
            .verifier
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(*a.verifier, *b.verifier);
        assert_eq!(a.challenge, challenge(&a.verifier));
        assert_ne!(state(), state());
    }
}
