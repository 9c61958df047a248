//! The settings an import runs with, kept with mapping templates.

use serde::{Deserialize, Serialize};

/// How a file is read and what it may change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImportSettings {
    /// `,`, `;` or a tab; detected from the header row when absent.
    pub delimiter: Option<char>,
    /// Whether existing records are updated; when false they are skipped.
    pub update_existing: bool,
    /// Whether created users receive an invite to set their password.
    pub send_invites: bool,
    /// The workbook sheet a job reads (the first when absent); set from the
    /// upload's `sheet`, never from a template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The workbook row naming the columns (the first non-empty when absent);
    /// set from the upload's `headerRow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_row: Option<usize>,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            delimiter: None,
            update_existing: true,
            send_invites: false,
            sheet: None,
            header_row: None,
        }
    }
}

impl ImportSettings {
    /// The delimiter as the CSV reader wants it.
    pub fn delimiter_byte(&self) -> Option<u8> {
        self.delimiter.and_then(|c| u8::try_from(c).ok())
    }
}
