use std::fmt;

use crate::error::{AppError, AppResult};

/// A National Provider Identifier: ten digits whose last is the Luhn check digit
/// of the first nine prefixed by the card issuer prefix 80840.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Npi(String);

impl Npi {
    pub fn parse(raw: &str, field: &str) -> AppResult<Self> {
        let digits: String = raw.trim().chars().filter(|c| !c.is_whitespace()).collect();
        if digits.is_empty() {
            return Err(AppError::bad_input(field, "is required"));
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(AppError::bad_input(field, "must hold only digits"));
        }
        if digits.len() != 10 {
            return Err(AppError::bad_input(
                field,
                format!("must be exactly 10 digits; this has {}", digits.len()),
            ));
        }
        if !luhn_valid(&format!("80840{digits}")) {
            return Err(AppError::bad_input(
                field,
                "has a wrong check digit (the last digit does not match the first nine)",
            ));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Npi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Luhn check over a string of ASCII digits, check digit last.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_npis_with_a_valid_check_digit() {
        // 1234567893 is CMS's published example.
        for raw in ["1234567893", " 1245319599 ", "1003000126"] {
            assert!(Npi::parse(raw, "npi").is_ok(), "{raw} was refused");
        }
    }

    #[test]
    fn refuses_malformed_npis_saying_why() {
        let cases = [
            ("1234567890", "check digit"),
            ("123456789", "exactly 10 digits"),
            ("12345678931", "exactly 10 digits"),
            ("12345A7893", "only digits"),
            ("", "required"),
        ];
        for (raw, reason) in cases {
            let Err(AppError::BadInput(fields)) = Npi::parse(raw, "npi") else {
                panic!("{raw} was accepted");
            };
            assert_eq!(fields[0].field, "npi");
            assert!(fields[0].message.contains(reason), "{raw}: {fields:?}");
        }
    }
}
