//! Second factors: who must have one, TOTP codes (RFC 6238), recovery codes,
//! and the key that keeps their secrets.
//!
//! - TOTP is the profile every authenticator app reads from an `otpauth://`
//!   URI: HMAC-SHA-1, six digits, 30-second steps, one step of drift either
//!   way. A code is good once: the step it matched is stored, and only a later
//!   step is accepted after it.
//! - Recovery codes are ten random codes shown once; only their HMAC under the
//!   server's key is stored, so a copy of the database gives no code.
//! - TOTP secrets are stored encrypted (AES-256-GCM) with the server's key
//!   (`ROLLCALL_SECRET_KEY`): a copy of the database gives no secret either.

use std::collections::BTreeSet;

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

use super::Permission;

/// How long a login may wait for its second factor.
pub const PENDING_LOGIN: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// How recent a second factor must be for a sensitive operation.
pub const STEP_UP_WINDOW: chrono::Duration = chrono::Duration::minutes(15);
/// How many recovery codes a user holds after enrolling or regenerating.
pub const RECOVERY_CODES: usize = 10;

/// Who in an organisation must have a second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MfaPolicy {
    None,
    /// Users holding any of [`PRIVILEGED`], and super admins.
    Privileged,
    All,
}

/// The permissions that make a user privileged for [`MfaPolicy::Privileged`].
pub const PRIVILEGED: [Permission; 6] = [
    Permission::UsersWrite,
    Permission::RolesManage,
    Permission::SessionsManage,
    Permission::OrganizationManage,
    Permission::ImportsRun,
    Permission::AuditRead,
];

impl MfaPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Privileged => "PRIVILEGED",
            Self::All => "ALL",
        }
    }

    /// The stored word; anything unknown is read as the strictest policy.
    pub fn from_stored(raw: &str) -> Self {
        match raw {
            "NONE" => Self::None,
            "PRIVILEGED" => Self::Privileged,
            _ => Self::All,
        }
    }

    /// Whether a user with these permissions must have a second factor.
    pub fn applies_to(self, super_admin: bool, permissions: &BTreeSet<Permission>) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Privileged => super_admin || PRIVILEGED.iter().any(|p| permissions.contains(p)),
        }
    }
}

/// The server's key for secrets at rest: 32 bytes.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
    /// A key of its own for digests, derived from the configured one.
    digest_key: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Stored secrets carry their format's version before the ciphertext.
const SEALED_PREFIX: &str = "v1:";

impl SecretKey {
    pub fn new(key: [u8; 32]) -> Self {
        let digest_key: [u8; 32] = Sha256::new()
            .chain_update(b"rollcall digest key\0")
            .chain_update(key)
            .finalize()
            .into();
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
            digest_key,
        }
    }

    /// A key from its configured form: 32 bytes in standard base64.
    pub fn parse(encoded: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "is not base64".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("holds {} bytes, not 32", b.len()))?;
        Ok(Self::new(key))
    }

    /// A new random key in its configured form.
    pub fn generate_encoded() -> String {
        STANDARD.encode(random_bytes::<32>())
    }

    /// Encrypt `plain` with a fresh nonce; `context` (the owner's id) is bound
    /// to it, so a sealed value moved to another row does not open.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> String {
        let nonce = random_bytes::<12>();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                aes_gcm::aead::Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Open what [`SecretKey::seal`] made; `None` if it was made with another
    /// key or context, or altered.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                aes_gcm::aead::Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()
    }

    /// A key of its own for `purpose`, derived from the configured one.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.digest_key)
            .expect("HMAC takes a key of any length");
        mac.update(b"derive\0");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// A keyed digest (HMAC-SHA-256, hex) of a value kept only to compare.
    pub fn digest(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.digest_key)
            .expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random generator failed");
    bytes
}

/// A TOTP secret: 160 random bits, as RFC 4226 recommends.
pub fn new_totp_secret() -> Vec<u8> {
    random_bytes::<20>().to_vec()
}

/// The TOTP of a secret, labelled for an authenticator app.
pub fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<TOTP, String> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some(issuer.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| e.to_string())
}

/// The secret as people type it into an app: base32 without padding.
pub fn totp_secret_text(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// RFC 6238's TOTP of `secret` with HMAC-SHA-1 at time step `step`, `digits`
/// long (RFC 4226's dynamic truncation).
fn totp_code(secret: &[u8], step: u64, digits: u32) -> String {
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        digits as usize,
        0,
        30,
        secret.to_vec(),
        None,
        String::new(),
    );
    totp.generate(step * 30)
}

/// The time step a code matches at `unix_seconds`, within one step either
/// way and after `last_used_step`: `None` for a wrong, stale or replayed code.
pub fn match_totp(
    secret: &[u8],
    code: &str,
    unix_seconds: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_seconds / 30;
    let mut found = None;
    // Every candidate is computed and compared in constant time, so the
    // answer's timing says nothing about which step matched.
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = totp_code(secret, step, 6);
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if same && last_used_step.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Characters of recovery codes: no 0/o, 1/l/i, so they read back unambiguously.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// Ten new recovery codes, `xxxxx-xxxxx` (about 49 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = random_bytes::<10>();
            let chars: String = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A recovery code as typed, in the form its digest was made of: lower case,
/// without spaces or dashes. `None` if it cannot be one.
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    (code.len() == 10 && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 seed and its eight-digit codes.
    const SEED: &[u8] = b"12345678901234567890";
    const VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        for (time, expected) in VECTORS {
            assert_eq!(totp_code(SEED, time / 30, 8), expected, "T = {time}");
            // Six digits are the same truncation modulo 10^6.
            assert_eq!(totp_code(SEED, time / 30, 6), expected[2..], "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_way_and_only_once() {
        for (time, expected) in VECTORS {
            let six = &expected[2..];
            let step = time / 30;
            assert_eq!(match_totp(SEED, six, time, None), Some(step));
            assert_eq!(match_totp(SEED, six, time + 30, None), Some(step));
            assert_eq!(
                match_totp(SEED, six, time.saturating_sub(30), None),
                Some(step)
            );
            assert_eq!(
                match_totp(SEED, six, time + 60, None),
                None,
                "two steps late"
            );
            assert_eq!(match_totp(SEED, six, time, Some(step)), None, "replayed");
            assert_eq!(match_totp(SEED, six, time, Some(step - 1)), Some(step));
        }
        assert_eq!(match_totp(SEED, "94287", 59, None), None);
        assert_eq!(match_totp(SEED, "28708x", 59, None), None);
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_owner() {
        let key = SecretKey::new([7; 32]);
        let sealed = key.seal(b"secret", b"owner-1");
        assert_ne!(key.seal(b"secret", b"owner-1"), sealed, "fresh nonce");
        assert_eq!(
            key.open(&sealed, b"owner-1").as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(key.open(&sealed, b"owner-2"), None);
        assert_eq!(SecretKey::new([8; 32]).open(&sealed, b"owner-1"), None);
        assert_eq!(key.open("v1:AAAA", b"owner-1"), None);
        assert_eq!(key.digest("abc"), key.digest("abc"));
        assert_ne!(key.digest("abc"), SecretKey::new([8; 32]).digest("abc"));
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_read_back_as_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), 10);
        for code in &codes {
            let typed = format!(" {} ", code.to_uppercase());
            assert_eq!(
                normalize_recovery_code(&typed).as_deref(),
                Some(code.replace('-', "").as_str())
            );
        }
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code("abcde-fghi1"), None);
    }

    #[test]
    fn the_privileged_policy_follows_the_permissions() {
        let none = BTreeSet::new();
        let reader = BTreeSet::from([Permission::UsersRead, Permission::PatientsRead]);
        let auditor = BTreeSet::from([Permission::AuditRead]);
        assert!(!MfaPolicy::Privileged.applies_to(false, &none));
        assert!(!MfaPolicy::Privileged.applies_to(false, &reader));
        assert!(MfaPolicy::Privileged.applies_to(false, &auditor));
        assert!(MfaPolicy::Privileged.applies_to(true, &none));
        assert!(MfaPolicy::All.applies_to(false, &none));
        assert!(!MfaPolicy::None.applies_to(true, &auditor));
        assert_eq!(MfaPolicy::from_stored("garbled"), MfaPolicy::All);
    }
}
