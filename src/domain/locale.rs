use std::fmt;

use crate::error::{AppError, AppResult};

/// A BCP 47 language tag in its canonical form (`en-US`, `es`, `fr-CA`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Locale(String);

impl Locale {
    pub fn parse(raw: &str, field: &str) -> AppResult<Self> {
        let raw = raw.trim().replace('_', "-");
        if raw.is_empty() {
            return Err(AppError::bad_input(field, "is required"));
        }
        if raw.len() > 35 {
            return Err(AppError::bad_input(field, "is too long for a locale"));
        }
        let locale = icu_locale_core::Locale::try_from_str(&raw).map_err(|_| {
            AppError::bad_input(field, "is not a language tag such as en-US or fr-CA")
        })?;
        if locale.id.language.is_unknown() {
            return Err(AppError::bad_input(
                field,
                "must name a language, e.g. en-US",
            ));
        }
        Ok(Self(locale.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_common_spellings() {
        for (raw, canonical) in [
            ("en-US", "en-US"),
            ("en_us", "en-US"),
            ("FR-ca", "fr-CA"),
            ("es", "es"),
        ] {
            assert_eq!(Locale::parse(raw, "locale").expect(raw).as_str(), canonical);
        }
    }

    #[test]
    fn refuses_what_is_not_a_language_tag() {
        for raw in ["", "english please", "e", "en-US-", "und"] {
            assert!(
                Locale::parse(raw, "locale").is_err(),
                "{raw:?} was accepted"
            );
        }
    }
}
