use std::fmt;

use phonenumber::{Mode, country};

use crate::error::{AppError, AppResult};

/// A phone number that can be dialled, stored in E.164 (`+14155550123`). Numbers
/// written without a country code are read as North American, the region
/// Rollcall's organisations (NPI holders) are in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str, field: &str) -> AppResult<Self> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(AppError::bad_input(field, "is required"));
        }
        if raw.len() > 40 {
            return Err(AppError::bad_input(field, "is too long for a phone number"));
        }
        let invalid = || {
            AppError::bad_input(
                field,
                "is not a valid phone number (give the country code, e.g. +1 415 555 0123)",
            )
        };
        let number = phonenumber::parse(Some(country::Id::US), raw).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_numbers_in_e164() {
        for (raw, e164) in [
            ("(415) 555-2671", "+14155552671"),
            ("+1 415 555 2671", "+14155552671"),
            ("415.555.2671", "+14155552671"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(Phone::parse(raw, "phone").expect(raw).as_str(), e164);
        }
    }

    #[test]
    fn refuses_what_cannot_be_dialled() {
        for raw in ["", "12", "not a phone", "+1 555", "555-CALL-NOW-PLEASE"] {
            assert!(Phone::parse(raw, "phone").is_err(), "{raw:?} was accepted");
        }
    }
}
