//! The import center's engine: reading CSV files, mapping their columns to
//! fields, checking rows by the same rules as the API, and the job runner that
//! writes them in batches on whichever instance claims the job.
//!
//! - [`file`]: UTF-8 decoding, delimiter detection, header checks, rows;
//! - [`fields`]: the target fields of each kind;
//! - [`mapping`]: suggested and checked mappings;
//! - [`settings`]: delimiter, update and invite switches;
//! - [`staff`]: USERS and PROVIDERS rows, checked and written per batch;
//! - [`jobs`]: claiming jobs with a lease, batches with checkpoints, finishing;
//! - [`export`]: failed rows as CSV and XLSX, safe from formula injection.

pub mod export;
pub mod fields;
pub mod file;
pub mod jobs;
pub mod mapping;
pub mod settings;
pub mod staff;
