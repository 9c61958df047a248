//! Which column fills which field: suggested from the headers, or given and
//! checked.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap},
};

use serde::{Deserialize, Serialize};

use super::fields::FieldSpec;
use crate::error::{AppError, AppResult};

/// One column mapped to one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub column: String,
    pub field: String,
    /// Cell values read as others: `RN` as the role `Registered Nurse`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ValueTranslation>,
}

impl ColumnMapping {
    pub fn new(column: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            field: field.into(),
            values: Vec::new(),
        }
    }
}

/// A cell value of a column read as another. `from` matches a whole cell (or,
/// in a list field such as roles, one of its parts), case and spacing aside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueTranslation {
    pub from: String,
    pub to: String,
}

/// Fields whose cells hold several values separated by `;`.
const LIST_FIELDS: &[&str] = &["roles"];

/// Translations a column may carry.
const MOST_TRANSLATIONS: usize = 1000;

/// How long a translated value, either side, may be.
const LONGEST_TRANSLATED: usize = 200;

/// A checked mapping: for each mapped field, the index of its column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pairs: Vec<ColumnMapping>,
    columns: BTreeMap<String, usize>,
    /// For each field with translations: what each value (by [`value_key`])
    /// reads as.
    translations: BTreeMap<String, HashMap<String, String>>,
}

impl Mapping {
    /// `cell` of `field` as its column's translations read it: a whole cell,
    /// or in a list field each of its parts, that a translation names.
    pub fn translate<'c>(&self, field: &str, cell: Cow<'c, str>) -> Cow<'c, str> {
        let Some(table) = self.translations.get(field) else {
            return cell;
        };
        if let Some(to) = table.get(&value_key(&cell)) {
            return Cow::Owned(to.clone());
        }
        if LIST_FIELDS.contains(&field) && cell.contains(';') {
            let parts: Vec<&str> = cell
                .split(';')
                .map(|part| {
                    table
                        .get(&value_key(part))
                        .map_or(part.trim(), String::as_str)
                })
                .collect();
            return Cow::Owned(parts.join(";"));
        }
        cell
    }

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
        let mut translations = BTreeMap::new();
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
            match check_translations(&pair.column, &pair.values) {
                Ok(table) if !table.is_empty() => {
                    translations.insert(spec.key.to_owned(), table);
                }
                Ok(_) => {}
                Err(mut found) => problems.append(&mut found),
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
            Ok(Self {
                pairs,
                columns,
                translations,
            })
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

/// A column's translations by the value they read, or what is wrong with them.
fn check_translations(
    column: &str,
    values: &[ValueTranslation],
) -> Result<HashMap<String, String>, Vec<String>> {
    let mut problems = Vec::new();
    if values.len() > MOST_TRANSLATIONS {
        problems.push(format!(
            "column {column:?} has {} value translations; at most {MOST_TRANSLATIONS}",
            values.len()
        ));
    }
    let mut table = HashMap::new();
    for translation in values {
        let key = value_key(&translation.from);
        if key.is_empty() {
            problems.push(format!(
                "column {column:?} translates a blank value; leave blank cells blank"
            ));
        } else if translation.from.chars().count() > LONGEST_TRANSLATED
            || translation.to.chars().count() > LONGEST_TRANSLATED
        {
            problems.push(format!(
                "column {column:?}: a translated value is longer than {LONGEST_TRANSLATED} characters"
            ));
        } else if table
            .insert(key, translation.to.trim().to_owned())
            .is_some()
        {
            problems.push(format!(
                "column {column:?} translates {:?} twice",
                translation.from.trim()
            ));
        }
    }
    if problems.is_empty() {
        Ok(table)
    } else {
        Err(problems)
    }
}

/// A value as translations match it: trimmed, lower case, inner spaces single.
pub fn value_key(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A value a column's cells may be translated to, with the other names it goes by.
pub struct ValueTarget {
    pub value: String,
    pub synonyms: Vec<String>,
}

impl ValueTarget {
    /// A name, known also by its initials when it has several words:
    /// `Registered Nurse` as `RN`.
    pub fn named(name: &str) -> Self {
        let words: Vec<&str> = name.split_whitespace().collect();
        let synonyms = if words.len() >= 2 {
            vec![words.iter().filter_map(|w| w.chars().next()).collect()]
        } else {
            Vec::new()
        };
        Self {
            value: name.to_owned(),
            synonyms,
        }
    }
}

/// Translations the distinct `values` of a column suggest: each value that is
/// no target by name, read as the target it is nearest, matched as headers are
/// matched to fields. Values near no target are left to the admin.
pub fn suggest_values<'v>(
    values: impl IntoIterator<Item = &'v str>,
    targets: &[ValueTarget],
) -> Vec<ValueTranslation> {
    let mut seen = BTreeSet::new();
    let mut suggested = Vec::new();
    for value in values {
        let spelling = normalize(value);
        if spelling.is_empty() || !seen.insert(spelling.clone()) {
            continue;
        }
        if targets.iter().any(|t| normalize(&t.value) == spelling) {
            continue;
        }
        let best = targets
            .iter()
            .map(|target| {
                let synonyms: Vec<&str> = target.synonyms.iter().map(String::as_str).collect();
                (similarity(&spelling, &[&target.value], &synonyms), target)
            })
            .filter(|(score, _)| *score >= 0.88)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, target)) = best {
            suggested.push(ValueTranslation {
                from: value.trim().to_owned(),
                to: target.value.clone(),
            });
        }
    }
    suggested
}

/// Distinct values of a column read for suggestions, at most.
const MOST_DISTINCT_VALUES: usize = 500;

/// Value translations for the roles and employee status columns that `pairs`
/// map: the file's values that name no role (of `role_names`) or status, read
/// as the nearest one. They join the translations `pairs` give on the entry of
/// `suggested` for the same column and field (added when neither is taken).
/// Only values the rows hold are read: a column's first distinct ones, up to a
/// bound.
pub fn suggest_translations(
    file: &super::file::CsvFile<'_>,
    pairs: &[ColumnMapping],
    role_names: &[String],
    suggested: &mut Vec<ColumnMapping>,
) {
    for pair in pairs {
        let targets: Vec<ValueTarget> = match pair.field.as_str() {
            "roles" => role_names.iter().map(|n| ValueTarget::named(n)).collect(),
            "employeeStatus" => crate::domain::EmployeeStatus::ALL
                .iter()
                .map(|status| ValueTarget {
                    value: status.label().to_owned(),
                    synonyms: status.spellings().iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
            _ => continue,
        };
        let Some(index) = file
            .headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(pair.column.trim()))
        else {
            continue;
        };
        let given: BTreeSet<String> = pair.values.iter().map(|v| value_key(&v.from)).collect();
        let mut distinct = BTreeSet::new();
        'rows: for row in file.rows() {
            let Some(cell) = row.cells.get(index) else {
                continue;
            };
            let parts: Vec<&str> = if LIST_FIELDS.contains(&pair.field.as_str()) {
                cell.split(';').collect()
            } else {
                vec![cell]
            };
            for part in parts.into_iter().map(str::trim) {
                if !part.is_empty() && !given.contains(&value_key(part)) {
                    distinct.insert(part.to_owned());
                    if distinct.len() >= MOST_DISTINCT_VALUES {
                        break 'rows;
                    }
                }
            }
        }
        let mut values = pair.values.clone();
        values.extend(suggest_values(
            distinct.iter().map(String::as_str),
            &targets,
        ));
        if values.is_empty() {
            continue;
        }
        let same_column = |m: &ColumnMapping| m.column.eq_ignore_ascii_case(pair.column.trim());
        if let Some(entry) = suggested
            .iter_mut()
            .find(|m| same_column(m) && m.field == pair.field)
        {
            entry.values = values;
        } else if !suggested
            .iter()
            .any(|m| same_column(m) || m.field == pair.field)
        {
            suggested.push(ColumnMapping {
                column: pair.column.clone(),
                field: pair.field.clone(),
                values,
            });
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
        .map(|(column, rank)| ColumnMapping::new(headers[column].clone(), fields[rank].key))
        .collect()
}

/// How well a normalised header names a field: 1 for its key or label, just
/// below for a known spelling, a similarity for near matches.
fn score(header: &str, spec: &FieldSpec) -> f64 {
    similarity(header, &[spec.key, spec.label], spec.synonyms)
}

/// How well a normalised spelling names something called `names` (1) or
/// known as `synonyms` (just below), or how near it comes to any of them.
fn similarity(spelling: &str, names: &[&str], synonyms: &[&str]) -> f64 {
    if spelling.is_empty() {
        return 0.0;
    }
    if names.iter().any(|n| normalize(n) == spelling) {
        return 1.0;
    }
    if synonyms.iter().any(|s| normalize(s) == spelling) {
        return 0.99;
    }
    names
        .iter()
        .chain(synonyms)
        .map(|n| normalize(n))
        .filter(|name| name.len() >= 4)
        .map(|name| strsim::jaro_winkler(spelling, &name) * 0.98)
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
        let pair = ColumnMapping::new;
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

    fn translated(column: &str, field: &str, pairs: &[(&str, &str)]) -> Mapping {
        let headers = vec!["Email".to_owned(), column.to_owned()];
        let mut mapping = ColumnMapping::new(column, field);
        mapping.values = pairs
            .iter()
            .map(|(from, to)| ValueTranslation {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            })
            .collect();
        Mapping::check(
            vec![ColumnMapping::new("Email", "email"), mapping],
            &headers,
            &fields(ImportKind::Users),
        )
        .expect("checked")
    }

    #[test]
    fn translations_read_whole_cells_and_each_role_of_a_list() {
        let mapping = translated(
            "Job",
            "roles",
            &[("RN", "Registered Nurse"), ("md ", "Medical Director")],
        );
        let read = |cell: &str| mapping.translate("roles", Cow::Borrowed(cell)).into_owned();
        assert_eq!(read("rn"), "Registered Nurse");
        assert_eq!(read("RN; MD"), "Registered Nurse;Medical Director");
        assert_eq!(read("Admin"), "Admin");
        assert_eq!(read("RN;Admin"), "Registered Nurse;Admin");
        // Other fields keep their cells.
        assert_eq!(mapping.translate("title", Cow::Borrowed("RN")), "RN");
    }

    #[test]
    fn a_translation_twice_or_of_a_blank_is_refused() {
        let headers = vec!["Email".to_owned(), "Status".to_owned()];
        let mut status = ColumnMapping::new("Status", "employeeStatus");
        status.values = [("Term", "Inactive"), (" term ", "Leave"), ("  ", "Active")]
            .iter()
            .map(|(from, to)| ValueTranslation {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            })
            .collect();
        let AppError::BadInput(problems) = Mapping::check(
            vec![ColumnMapping::new("Email", "email"), status],
            &headers,
            &fields(ImportKind::Users),
        )
        .expect_err("refused") else {
            panic!("not bad input")
        };
        let text: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            text.iter().any(|t| t.contains("translates \"term\" twice")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("translates a blank value")),
            "{text:?}"
        );
    }

    #[test]
    fn values_suggest_the_role_or_status_they_are_nearest() {
        let roles = [
            ValueTarget::named("Registered Nurse"),
            ValueTarget::named("Medical Director"),
            ValueTarget::named("Billing"),
        ];
        let got = suggest_values(
            ["RN", "Registered Nurse", "Biling", "Janitor", "rn", "MD"],
            &roles,
        );
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|t| (t.from.as_str(), t.to.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("RN", "Registered Nurse"),
                ("Biling", "Billing"),
                ("MD", "Medical Director"),
            ]
        );
        let statuses: Vec<ValueTarget> = crate::domain::EmployeeStatus::ALL
            .iter()
            .map(|s| ValueTarget {
                value: s.label().to_owned(),
                synonyms: s.spellings().iter().map(|w| (*w).to_owned()).collect(),
            })
            .collect();
        let got = suggest_values(["Term", "LOA", "Active", "Actve"], &statuses);
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|t| (t.from.as_str(), t.to.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("Term", "Inactive"), ("LOA", "Leave"), ("Actve", "Active")]
        );
    }
}
