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
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            delimiter: None,
            update_existing: true,
            send_invites: false,
        }
    }
}

impl ImportSettings {
    /// The delimiter as the CSV reader wants it.
    pub fn delimiter_byte(&self) -> Option<u8> {
        self.delimiter.and_then(|c| u8::try_from(c).ok())
    }
}
