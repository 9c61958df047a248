//! Which column fills which field: suggested from the headers, or given and
//! checked.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::fields::FieldSpec;
use crate::error::{AppError, AppResult};

/// One column mapped to one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub column: String,
    pub field: String,
}

/// A checked mapping: for each mapped field, the index of its column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pairs: Vec<ColumnMapping>,
    columns: BTreeMap<String, usize>,
}

impl Mapping {
    /// The column index of `field`, if mapped.
    pub fn column_of(&self, field: &str) -> Option<usize> {
        self.columns.get(field).copied()
    }

    pub fn maps(&self, field: &str) -> bool {
        self.columns.contains_key(field)
    }

    /// Check `pairs` against the file's headers and the kind's fields: every
    /// column must exist, every field must be known and mapped once, every
    /// required field mapped. Each problem is reported.
    pub fn check(
        pairs: Vec<ColumnMapping>,
        headers: &[String],
        fields: &[FieldSpec],
    ) -> AppResult<Self> {
        let mut problems = Vec::new();
        let mut columns = BTreeMap::new();
        let mut used_columns = BTreeSet::new();
        for pair in &pairs {
            let Some(spec) = fields.iter().find(|f| f.key == pair.field) else {
                problems.push(format!(
                    "{:?} is not a field; use one of {}",
                    pair.field,
                    fields.iter().map(|f| f.key).collect::<Vec<_>>().join(", ")
                ));
                continue;
            };
            let Some(index) = headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(pair.column.trim()))
            else {
                problems.push(format!("the file has no column {:?}", pair.column));
                continue;
            };
            if !used_columns.insert(index) {
                problems.push(format!("column {:?} is mapped twice", pair.column));
            }
            if columns.insert(spec.key.to_owned(), index).is_some() {
                problems.push(format!("field {} is mapped twice", spec.key));
            }
        }
        let missing = missing_required(fields, columns.keys().map(String::as_str));
        if !missing.is_empty() {
            problems.push(format!(
                "required fields are not mapped: {}",
                missing.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(Self { pairs, columns })
        } else {
            Err(AppError::BadInput(
                problems
                    .into_iter()
                    .map(|p| crate::error::FieldError::new("mapping", p))
                    .collect(),
            ))
        }
    }
}

/// The required fields that `mapped` leaves out.
pub fn missing_required<'a>(
    fields: &[FieldSpec],
    mapped: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mapped: BTreeSet<&str> = mapped.into_iter().collect();
    fields
        .iter()
        .filter(|f| f.required && !mapped.contains(f.key))
        .map(|f| f.key.to_owned())
        .collect()
}

/// The mapping the headers suggest: exact names, labels and known spellings first,
/// then near matches; never two columns to one field.
pub fn suggest(headers: &[String], fields: &[FieldSpec]) -> Vec<ColumnMapping> {
    let mut candidates = Vec::new();
    for (column, header) in headers.iter().enumerate() {
        // `Vorname/First name`: each part is a spelling of its own.
        let mut spellings = vec![normalize(header)];
        spellings.extend(header.split(['/', '|']).map(normalize));
        for (rank, spec) in fields.iter().enumerate() {
            let score = spellings
                .iter()
                .map(|spelling| score(spelling, spec))
                .fold(0.0, f64::max);
            if score >= 0.88 {
                candidates.push((score, column, rank));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut taken_columns, mut taken_fields) = (BTreeSet::new(), BTreeSet::new());
    let mut chosen = Vec::new();
    for (_, column, rank) in candidates {
        if taken_columns.contains(&column) || taken_fields.contains(&rank) {
            continue;
        }
        taken_columns.insert(column);
        taken_fields.insert(rank);
        chosen.push((column, rank));
    }
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|(column, rank)| ColumnMapping {
            column: headers[column].clone(),
            field: fields[rank].key.to_owned(),
        })
        .collect()
}

/// How well a normalised header names a field: 1 for its key or label, just
/// below for a known spelling, a similarity for near matches.
fn score(header: &str, spec: &FieldSpec) -> f64 {
    if header.is_empty() {
        return 0.0;
    }
    if header == normalize(spec.key) || header == normalize(spec.label) {
        return 1.0;
    }
    if spec.synonyms.iter().any(|s| normalize(s) == header) {
        return 0.99;
    }
    std::iter::once(normalize(spec.key))
        .chain(std::iter::once(normalize(spec.label)))
        .chain(spec.synonyms.iter().map(|s| normalize(s)))
        .filter(|name| name.len() >= 4)
        .map(|name| strsim::jaro_winkler(header, &name) * 0.98)
        .fold(0.0, f64::max)
}

/// Lower case letters and digits only: `E-mail Address` → `emailaddress`.
fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::fields::{ImportKind, fields};

    fn suggested(headers: &[&str], kind: ImportKind) -> Vec<(String, String)> {
        let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        suggest(&headers, &fields(kind))
            .into_iter()
            .map(|m| (m.column, m.field))
            .collect()
    }

    #[test]
    fn suggests_from_names_spellings_and_near_matches() {
        let got = suggested(
            &[
                "E-mail Address",
                "Surname",
                "Job Title",
                "Vorname/First name",
                "Role(s)",
                "Emial",
            ],
            ImportKind::Users,
        );
        let want = [
            ("E-mail Address", "email"),
            ("Surname", "lastName"),
            ("Job Title", "title"),
            ("Vorname/First name", "firstName"),
            ("Role(s)", "roles"),
        ];
        for (column, field) in want {
            assert!(
                got.contains(&(column.to_owned(), field.to_owned())),
                "{column}: {got:?}"
            );
        }
        // `Emial` is near `email`, but email is taken: never two columns to one field.
        assert_eq!(got.iter().filter(|(_, f)| f == "email").count(), 1);
    }

    #[test]
    fn provider_phone_and_zip_map_to_their_fields() {
        let got = suggested(
            &["Email", "NPI", "Zip", "Phone", "Address Line 1"],
            ImportKind::Providers,
        );
        for pair in [
            ("Zip", "postalCode"),
            ("Phone", "phone"),
            ("Address Line 1", "addressLine1"),
            ("NPI", "npi"),
        ] {
            assert!(
                got.contains(&(pair.0.to_owned(), pair.1.to_owned())),
                "{pair:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_bad_mapping_is_refused_with_every_problem() {
        let headers = vec!["Email".to_owned(), "Name".to_owned()];
        let pair = |c: &str, f: &str| ColumnMapping {
            column: c.into(),
            field: f.into(),
        };
        let err = Mapping::check(
            vec![
                pair("Name", "firstName"),
                pair("Name", "lastName"),
                pair("Missing", "title"),
                pair("Email", "shoeSize"),
            ],
            &headers,
            &fields(ImportKind::Users),
        )
        .expect_err("refused");
        let AppError::BadInput(problems) = err else {
            panic!("not bad input")
        };
        let text: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(text.iter().any(|t| t.contains("mapped twice")), "{text:?}");
        assert!(
            text.iter().any(|t| t.contains("no column \"Missing\"")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("\"shoeSize\" is not a field")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("required fields are not mapped: email")),
            "{text:?}"
        );
    }
}
