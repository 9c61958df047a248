//! Blank import templates: for each kind, the columns headed with the labels the
//! suggested mapping recognises (required fields first) and one example row, as
//! CSV or XLSX. A filled-in template maps itself.

use super::{
    export::{table_csv, table_xlsx},
    fields::{ImportKind, fields},
};

/// An example value of each field, valid by the import's rules.
fn example(kind: ImportKind, key: &str) -> &'static str {
    match (kind, key) {
        (ImportKind::Patients, "externalId") => "MRN-0001",
        (ImportKind::Patients, "email") => "jordan.rivera@example.org",
        (ImportKind::Patients, "phone") => "+1 217 555 0142",
        (ImportKind::Locations, "phone") => "+1 217 555 0300",
        (_, "email") => "ada.lovelace@example.org",
        (_, "firstName") => "Ada",
        (_, "lastName") => "Lovelace",
        (_, "employeeStatus") => "Active",
        (_, "title") => "Registered Nurse",
        (_, "mobilePhone") => "+1 217 555 0100",
        (_, "locale") => "en-US",
        (ImportKind::Providers, "roles") => "Provider",
        (_, "roles") => "Clinical Provider",
        (_, "externalId") => "EMP-0001",
        (_, "idleTimeoutMinutes") => "30",
        (_, "npi") => "1234567893",
        (_, "organizationRole") => "Provider",
        (_, "specialty") => "Family Medicine",
        (_, "addressLine1") => "200 Oak Ave",
        (_, "addressLine2") => "Suite 4",
        (_, "city") => "Springfield",
        (_, "state") => "IL",
        (_, "postalCode") => "62701",
        (_, "phone") => "+1 217 555 0300",
        (_, "billingTaxId") => "12-3456789",
        (_, "dateOfBirth") => "1984-03-12",
        (_, "name") => "Main Clinic",
        (_, "active") => "yes",
        _ => "",
    }
}

/// The template's header and example row.
fn table(kind: ImportKind) -> (Vec<String>, Vec<Vec<String>>) {
    let specs = fields(kind);
    let headers = specs.iter().map(|f| f.label.to_owned()).collect();
    let example = specs
        .iter()
        .map(|f| example(kind, f.key).to_owned())
        .collect();
    (headers, vec![example])
}

/// The template of `kind` as CSV (UTF-8 with a BOM).
pub fn csv(kind: ImportKind) -> anyhow::Result<Vec<u8>> {
    let (headers, rows) = table(kind);
    table_csv(&headers, &rows)
}

/// The template of `kind` as an XLSX workbook.
pub fn xlsx(kind: ImportKind) -> anyhow::Result<Vec<u8>> {
    let (headers, rows) = table(kind);
    table_xlsx("Template", &headers, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{file::CsvFile, file::decode, mapping::suggest};

    #[test]
    fn every_template_maps_itself_with_every_field() {
        for kind in [
            ImportKind::Users,
            ImportKind::Providers,
            ImportKind::Patients,
            ImportKind::Locations,
        ] {
            let bytes = csv(kind).expect("csv");
            let text = decode(&bytes).expect("utf-8");
            let file = CsvFile::open(text, None).expect("readable");
            let specs = fields(kind);
            let suggested = suggest(&file.headers, &specs);
            let mapped: Vec<&str> = suggested.iter().map(|m| m.field.as_str()).collect();
            let keys: Vec<&str> = specs.iter().map(|f| f.key).collect();
            assert_eq!(mapped, keys, "{kind:?}");
            assert!(
                specs.iter().all(|f| !example(kind, f.key).is_empty()),
                "{kind:?}"
            );
        }
    }
}
