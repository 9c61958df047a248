//! Passwords: the policy, the argon2id hashing, and the generator.
//!
//! Hashing costs ~25 ms of one core at OWASP's parameters, so it runs on tokio's
//! blocking pool behind a semaphore: a burst of logins waits its turn instead of
//! taking every core from the requests that are already authenticated.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock},
};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
    password_hash::SaltString,
};
use rand::{Rng, seq::SliceRandom};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use crate::error::{AppError, AppResult, FieldError};

/// OWASP's recommended argon2id parameters (m=19456 KiB, t=2, p=1).
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

pub const MAX_LENGTH: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// An organisation's password rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub require_digit: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            require_digit: true,
        }
    }
}

/// A password that passed the policy, Unicode-normalised (NFKC), ready to hash.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Password {
    /// Check `raw` against the policy; `field` names the input in the error.
    pub fn parse(
        raw: &str,
        policy: PasswordPolicy,
        email: Option<&str>,
        field: &str,
    ) -> AppResult<Self> {
        let normalized = normalize(raw);
        let length = normalized.chars().count();
        let reason = if length < policy.min_length {
            Some(format!(
                "must be at least {} characters long",
                policy.min_length
            ))
        } else if length > MAX_LENGTH {
            Some(format!("must be at most {MAX_LENGTH} characters long"))
        } else if policy.require_digit && !normalized.chars().any(|c| c.is_ascii_digit()) {
            Some("must contain at least one digit".to_owned())
        } else if email.is_some_and(|email| {
            let lower = normalized.to_lowercase();
            lower == email.to_lowercase()
                || email
                    .split('@')
                    .next()
                    .is_some_and(|local| local.len() >= 4 && lower == local.to_lowercase())
        }) {
            Some("must not be your email address".to_owned())
        } else if COMMON_PASSWORDS.contains(normalized.to_lowercase().as_str()) {
            Some("is one of the most common passwords; choose another".to_owned())
        } else {
            None
        };
        match reason {
            Some(message) => Err(AppError::BadInput(vec![FieldError::new(field, message)])),
            None => Ok(Self(normalized)),
        }
    }

    /// A strong random password: 20 characters from an alphabet without look-alikes,
    /// with at least one lower case letter, upper case letter and digit.
    pub fn generate() -> Self {
        const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
        const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
        const DIGITS: &[u8] = b"23456789";
        const SYMBOLS: &[u8] = b"-_.!*";
        let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
        // ThreadRng is a CSPRNG (ChaCha) seeded from the operating system.
        let mut rng = rand::rng();
        let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS]
            .iter()
            .map(|set| set[rng.random_range(0..set.len())])
            .collect();
        while chars.len() < 20 {
            chars.push(all[rng.random_range(0..all.len())]);
        }
        chars.shuffle(&mut rng);
        Self(String::from_utf8(chars).unwrap_or_default())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn normalize(raw: &str) -> String {
    raw.nfkc().collect()
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash used weaker parameters: here is a new one to store.
    YesRehashed(String),
}

/// Hashes and verifies off the async runtime, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Self {
        let dummy =
            hash_blocking("not a password of anybody's, only for timing").unwrap_or_default();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(dummy),
        }
    }

    pub async fn hash(&self, password: &Password) -> AppResult<String> {
        let password = password.0.clone();
        self.run(move || hash_blocking(&password)).await?
    }

    /// Verify `candidate` against `stored`; with no stored hash (unknown user, no
    /// password yet) verify against a dummy hash so the answer takes as long.
    pub async fn verify(&self, candidate: &str, stored: Option<&str>) -> AppResult<Verified> {
        let candidate = normalize(candidate);
        let (stored, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        let verified = self
            .run(move || verify_blocking(&candidate, &stored))
            .await??;
        Ok(if real { verified } else { Verified::No })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AppError::Unavailable("password hasher"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(e.into()))
    }
}

fn hash_blocking(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing failed: {e}")))
}

fn verify_blocking(candidate: &str, stored: &str) -> AppResult<Verified> {
    let parsed = PasswordHash::new(stored)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
    if argon2()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_err()
    {
        return Ok(Verified::No);
    }
    if is_weaker_than_current(&parsed) {
        return Ok(Verified::YesRehashed(hash_blocking(candidate)?));
    }
    Ok(Verified::Yes)
}

fn is_weaker_than_current(hash: &PasswordHash<'_>) -> bool {
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    match Params::try_from(hash) {
        Ok(params) => {
            params.m_cost() < MEMORY_KIB
                || params.t_cost() < ITERATIONS
                || params.p_cost() < PARALLELISM
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> AppResult<Password> {
        Password::parse(
            raw,
            PasswordPolicy::default(),
            Some("ada1815@example.org"),
            "password",
        )
    }

    #[test]
    fn refuses_what_the_policy_forbids() {
        let cases = [
            ("short1", "at least 8"),
            ("no digits here", "digit"),
            ("password1", "most common"),
            ("Password1", "most common"),
            ("ADA1815@example.org", "email"),
            ("Ada1815", "at least 8"),
            (&"a1".repeat(65), "at most 128"),
        ];
        for (raw, reason) in cases {
            match parse(raw) {
                Err(AppError::BadInput(fields)) => {
                    assert_eq!(fields[0].field, "password");
                    assert!(
                        fields[0].message.contains(reason),
                        "{raw}: {}",
                        fields[0].message
                    );
                }
                other => panic!("{raw} was accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn accepts_a_reasonable_password_and_honours_organisation_policy() {
        assert!(parse("correct horse 42").is_ok());
        let relaxed = PasswordPolicy {
            min_length: 12,
            require_digit: false,
        };
        assert!(Password::parse("long enough phrase", relaxed, None, "p").is_ok());
        assert!(Password::parse("tooshort1", relaxed, None, "p").is_err());
    }

    #[test]
    fn normalises_unicode_so_equivalent_forms_match() {
        let composed = parse("caf\u{e9} au lait 1").map(|p| p.expose().to_owned());
        let decomposed = parse("cafe\u{301} au lait 1").map(|p| p.expose().to_owned());
        assert_eq!(composed.ok(), decomposed.ok());
    }

    #[test]
    fn generated_passwords_always_pass_the_policy() {
        for _ in 0..200 {
            let generated = Password::generate();
            assert_eq!(generated.expose().len(), 20);
            assert!(parse(generated.expose()).is_ok(), "{}", generated.expose());
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_weak_hashes_are_upgraded() {
        let hasher = Hasher::new(1);
        let password = parse("correct horse 42").expect("valid");
        let hash = hasher.hash(&password).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher.verify("correct horse 42", Some(&hash)).await.ok(),
            Some(Verified::Yes)
        );
        assert_eq!(
            hasher.verify("wrong horse 42", Some(&hash)).await.ok(),
            Some(Verified::No)
        );
        assert_eq!(
            hasher.verify("anything", None).await.ok(),
            Some(Verified::No)
        );

        let weak_params = Params::new(8, 1, 1, None).expect("params");
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, weak_params)
            .hash_password(
                b"correct horse 42",
                &SaltString::generate(&mut argon2::password_hash::rand_core::OsRng),
            )
            .expect("weak hash")
            .to_string();
        match hasher.verify("correct horse 42", Some(&weak)).await {
            Ok(Verified::YesRehashed(new)) => assert!(new.contains("m=19456,t=2,p=1")),
            other => panic!("not rehashed: {other:?}"),
        }
    }
}
