use std::fmt;

use crate::error::{AppError, AppResult};

/// An email address, trimmed and lower-cased: the username of a staff user,
/// compared case-insensitively.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parse `raw`; `field` names the input in the error.
    pub fn parse(raw: &str, field: &str) -> AppResult<Self> {
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() {
            return Err(AppError::bad_input(field, "is required"));
        }
        if normalized.len() > 254 {
            return Err(AppError::bad_input(
                field,
                "must be at most 254 characters long",
            ));
        }
        if !is_plausible_address(&normalized) {
            return Err(AppError::bad_input(field, "is not a valid email address"));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The practical subset of RFC 5322 that mail systems deliver to: one `@`, a
/// local part of printable characters without spaces or quotes, and a domain of
/// dot-separated labels with a top-level part.
fn is_plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
    local_ok && domain_ok
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    // Emails are personal data: keep them out of debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Ada.Lovelace@Example.ORG ", "email").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace@example.org");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for raw in [
            "",
            "plainaddress",
            "@example.org",
            "ada@",
            "ada@example",
            "ada@@example.org",
            "ada lovelace@example.org",
            "ada..l@example.org",
            ".ada@example.org",
            "ada@-example.org",
            "ada@example.123",
            "ada@exa mple.org",
        ] {
            assert!(Email::parse(raw, "email").is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn accepts_common_real_addresses() {
        for raw in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "o'neil@example.ie",
            "josé@exämple.de",
        ] {
            assert!(Email::parse(raw, "email").is_ok(), "{raw:?} was refused");
        }
    }
}
