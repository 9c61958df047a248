use crate::error::{AppError, AppResult};

/// Employment status as the organisation's HR records have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmployeeStatus {
    Active,
    Inactive,
    Leave,
}

impl EmployeeStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Inactive, Self::Leave];

    /// Words HR systems use for the status, which an import's value
    /// translations are suggested from (never read without one).
    pub fn spellings(self) -> &'static [&'static str] {
        match self {
            Self::Active => &["Employed", "Current", "Full time", "Part time", "Per diem"],
            Self::Inactive => &[
                "Term",
                "Termed",
                "Terminated",
                "Separated",
                "Resigned",
                "Retired",
                "Former",
            ],
            Self::Leave => &["LOA", "Leave of absence", "Medical leave", "Parental leave"],
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Leave => "LEAVE",
        }
    }

    /// The word a spreadsheet holds, as [`parse`](Self::parse) reads it back.
    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
            Self::Leave => "Leave",
        }
    }

    /// Read a stored name; anything unknown reads as active.
    pub fn from_stored(stored: &str) -> Self {
        match stored {
            "INACTIVE" => Self::Inactive,
            "LEAVE" => Self::Leave,
            _ => Self::Active,
        }
    }

    /// Parse what people write in a spreadsheet: `Active`, `inactive`, `On leave`.
    pub fn parse(raw: &str, field: &str) -> AppResult<Self> {
        match raw.trim().to_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            "leave" | "on leave" => Ok(Self::Leave),
            _ => Err(AppError::bad_input(
                field,
                format!(
                    "{:?} is not a status; use Active, Inactive or Leave",
                    raw.trim()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_reads_back_as_its_status() {
        for status in [
            EmployeeStatus::Active,
            EmployeeStatus::Inactive,
            EmployeeStatus::Leave,
        ] {
            assert_eq!(EmployeeStatus::parse(status.label(), "s").unwrap(), status);
        }
    }

    #[test]
    fn parses_spreadsheet_spellings_and_refuses_others() {
        assert_eq!(
            EmployeeStatus::parse(" Active ", "s").expect("ok"),
            EmployeeStatus::Active
        );
        assert_eq!(
            EmployeeStatus::parse("On Leave", "s").expect("ok"),
            EmployeeStatus::Leave
        );
        assert!(EmployeeStatus::parse("Retired", "s").is_err());
        for s in [
            EmployeeStatus::Active,
            EmployeeStatus::Inactive,
            EmployeeStatus::Leave,
        ] {
            assert_eq!(EmployeeStatus::from_stored(s.as_str()), s);
        }
    }
}
