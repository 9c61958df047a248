//! The bearer tokens of API clients.
//!
//! A client token is 256 random bits behind the prefix `rcc_`, so that it is
//! told from a session token at a glance (and by secret scanners), and never
//! looked up in the session store. Only its SHA-256 digest is stored: the
//! token has full entropy, so a fast digest is as strong as a slow hash and
//! costs nothing per request.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::TryRngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "rcc_";
/// What a token's hint keeps: the prefix and eight characters.
const HINT_LEN: usize = PREFIX.len() + 8;

#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken(String);

impl ClientToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random generator failed");
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Whether a presented credential claims to be a client token: it then
    /// never reaches the session store, valid or not.
    pub fn claims(raw: &str) -> bool {
        raw.trim().starts_with(PREFIX)
    }

    /// A presented token, if it has the shape of one we issue.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let body = raw.strip_prefix(PREFIX)?;
        (body.len() == 43
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form: the SHA-256 digest, in hex.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The first characters, to tell a client's token apart in a list.
    pub fn hint(&self) -> String {
        self.0[..HINT_LEN].to_owned()
    }
}

impl fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientToken({}…)", self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_stored_as_their_digest() {
        let a = ClientToken::generate();
        let b = ClientToken::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("rcc_"));
        assert_eq!(a.expose().len(), 47);
        assert_eq!(ClientToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.digest().len(), 64);
        assert_ne!(a.digest(), b.digest());
        assert!(a.expose().starts_with(&a.hint()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn anything_else_is_refused_before_a_lookup() {
        assert!(ClientToken::parse("rcc_short").is_none());
        assert!(ClientToken::parse(&format!("rcc_{}", "a".repeat(42) + "!")).is_none());
        assert!(ClientToken::parse(&"a".repeat(47)).is_none());
        assert!(ClientToken::claims("rcc_anything"));
        assert!(!ClientToken::claims("abc"));
    }
}
