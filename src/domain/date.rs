//! Calendar dates as people type them into spreadsheets and forms, and the
//! time zones that say which day it is.

use chrono::NaiveDate;

use crate::error::{AppError, AppResult};

/// An IANA time zone name, e.g. `America/Chicago`.
pub fn parse_time_zone(raw: &str, field: &str) -> AppResult<String> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| {
            AppError::bad_input(
                field,
                format!("\"{raw}\" is not an IANA time zone such as America/Chicago"),
            )
        })
}

/// A date written `YYYY-MM-DD` or `MM/DD/YYYY` (US order, as the organisations
/// Rollcall serves write it). Anything else is refused with the accepted forms;
/// a day that does not exist (1990-02-30) is refused as such.
pub fn parse_date(raw: &str, field: &str) -> AppResult<NaiveDate> {
    let raw = raw.trim();
    let parts: Option<(i32, u32, u32)> = if let Some((y, rest)) = raw.split_once('-') {
        rest.split_once('-').and_then(|(m, d)| {
            (y.len() == 4 && (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()))
                .then(|| Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)))
                .flatten()
        })
    } else if let Some((m, rest)) = raw.split_once('/') {
        rest.split_once('/').and_then(|(d, y)| {
            (y.len() == 4 && (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()))
                .then(|| Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)))
                .flatten()
        })
    } else {
        None
    };
    let Some((year, month, day)) = parts else {
        return Err(AppError::bad_input(
            field,
            format!("\"{raw}\" is not a date: write it as YYYY-MM-DD or MM/DD/YYYY"),
        ));
    };
    NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| AppError::bad_input(field, format!("{raw} is not a day of the calendar")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iso_and_us_dates() {
        let day = NaiveDate::from_ymd_opt(1984, 3, 12).expect("valid");
        assert_eq!(parse_date("1984-03-12", "d").ok(), Some(day));
        assert_eq!(parse_date("03/12/1984", "d").ok(), Some(day));
        assert_eq!(parse_date(" 3/12/1984 ", "d").ok(), Some(day));
    }

    #[test]
    fn refuses_other_forms_and_days_that_do_not_exist() {
        for raw in ["12 Mar 1984", "1984/03/12", "84-03-12", "", "--", "1984-3-"] {
            let err = parse_date(raw, "dateOfBirth").expect_err(raw);
            assert!(
                err.to_string().contains("YYYY-MM-DD or MM/DD/YYYY"),
                "{raw}: {err}"
            );
        }
        let err = parse_date("1990-02-30", "dateOfBirth").expect_err("no such day");
        assert!(
            err.to_string().contains("not a day of the calendar"),
            "{err}"
        );
    }
}
