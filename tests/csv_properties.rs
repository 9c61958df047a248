//! Whatever bytes are uploaded, the CSV reader and the mapper answer with rows or
//! a clear error on `file` or `mapping`: never a panic.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

use proptest::prelude::*;
use rollcall::{
    error::AppError,
    import::{
        fields::{ImportKind, fields},
        file::{CsvFile, decode},
        mapping::{ColumnMapping, Mapping, suggest},
    },
};

/// Bytes that look like CSV often enough to reach the interesting paths.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b",".to_vec()),
        Just(b";".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just("Email".as_bytes().to_vec()),
        Just("Zoë".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

fn field_error_on(err: &AppError, field: &str) -> bool {
    matches!(err, AppError::BadInput(fields) if !fields.is_empty() && fields.iter().all(|f| f.field == field && !f.message.is_empty()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_upload_reads_or_is_refused_clearly(bytes in prop_oneof![csv_like(), proptest::collection::vec(any::<u8>(), 0..400)]) {
        let text = match decode(&bytes) {
            Ok(text) => text,
            Err(err) => {
                prop_assert!(field_error_on(&err, "file"), "{err:?}");
                return Ok(());
            }
        };
        let file = match CsvFile::open(text, None) {
            Ok(file) => file,
            Err(err) => {
                prop_assert!(field_error_on(&err, "file"), "{err:?}");
                return Ok(());
            }
        };
        let mut last = 1;
        for row in file.rows() {
            prop_assert!(row.number > last);
            last = row.number;
            prop_assert!(row.problem.is_some() || row.cells.len() == file.headers.len());
        }
        for kind in [ImportKind::Users, ImportKind::Providers] {
            let specs = fields(kind);
            let suggested = suggest(&file.headers, &specs);
            let mut used = std::collections::BTreeSet::new();
            for pair in &suggested {
                prop_assert!(used.insert(pair.field.clone()), "two columns to {}", pair.field);
            }
            if let Err(err) = Mapping::check(suggested, &file.headers, &specs) {
                prop_assert!(field_error_on(&err, "mapping"), "{err:?}");
            }
        }
    }

    #[test]
    fn any_mapping_is_checked_without_panicking(
        headers in proptest::collection::vec("[ -~]{0,12}", 0..6),
        pairs in proptest::collection::vec(("[ -~]{0,12}", "[a-zA-Z]{0,14}"), 0..8),
    ) {
        let pairs: Vec<ColumnMapping> = pairs
            .into_iter()
            .map(|(column, field)| ColumnMapping::new(column, field))
            .collect();
        if let Err(err) = Mapping::check(pairs, &headers, &fields(ImportKind::Providers)) {
            prop_assert!(field_error_on(&err, "mapping"), "{err:?}");
        }
    }
}
