//! Free text from clients: names, titles, addresses. Trimmed, bounded, and free of
//! control characters, so that nothing invisible reaches the database, the logs or
//! an export.

use crate::error::{AppError, AppResult};

/// A required line of text of at most `max` characters.
pub fn required(raw: &str, field: &str, max: usize) -> AppResult<String> {
    optional(Some(raw), field, max)?.ok_or_else(|| AppError::bad_input(field, "is required"))
}

/// An optional line of text: blank means absent.
pub fn optional(raw: Option<&str>, field: &str, max: usize) -> AppResult<Option<String>> {
    let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "must not contain line breaks or control characters",
        ));
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_treats_blank_as_absent() {
        assert_eq!(
            optional(Some("  Ada "), "f", 10).expect("ok"),
            Some("Ada".into())
        );
        assert_eq!(optional(Some("   "), "f", 10).expect("ok"), None);
        assert!(required("  ", "f", 10).is_err());
    }

    #[test]
    fn refuses_overlong_and_control_characters() {
        assert!(optional(Some("abcdefghijk"), "f", 10).is_err());
        assert!(optional(Some("a\nb"), "f", 10).is_err());
        assert!(optional(Some("a\u{0}b"), "f", 10).is_err());
        assert!(optional(Some("Zoë Brontë"), "f", 10).is_ok());
    }
}
