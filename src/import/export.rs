//! Failed rows as files to fix and upload again: the original columns in their
//! original order plus an `Errors` column. Cells a spreadsheet would run as a
//! formula are neutralised in both formats, and XLSX cells are always text.
//! Import templates are written the same way.

use rust_xlsxwriter::{Format, Workbook};

/// One failed row: its original cells and what was wrong.
pub struct FailedRow {
    pub cells: Vec<String>,
    pub errors: String,
}

/// Prefix a cell that begins like a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return) with an apostrophe, as OWASP advises against CSV injection.
pub fn neutralise(cell: &str) -> String {
    if begins_like_a_formula(cell) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// What [`neutralise`] made of a cell, back as it was; any other cell as it is.
pub fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if begins_like_a_formula(rest) => rest,
        _ => cell,
    }
}

fn begins_like_a_formula(cell: &str) -> bool {
    matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    )
}

/// A failed row's cells with its errors last.
fn with_errors(headers: &[String], rows: &[FailedRow]) -> (Vec<String>, Vec<Vec<String>>) {
    let headers = headers
        .iter()
        .cloned()
        .chain(std::iter::once("Errors".to_owned()))
        .collect();
    let rows = rows
        .iter()
        .map(|row| {
            row.cells
                .iter()
                .cloned()
                .chain(std::iter::once(row.errors.clone()))
                .collect()
        })
        .collect();
    (headers, rows)
}

pub fn to_csv(headers: &[String], rows: &[FailedRow]) -> anyhow::Result<Vec<u8>> {
    let (headers, rows) = with_errors(headers, rows);
    table_csv(&headers, &rows)
}

pub fn to_xlsx(headers: &[String], rows: &[FailedRow]) -> anyhow::Result<Vec<u8>> {
    let (headers, rows) = with_errors(headers, rows);
    table_xlsx("Failed rows", &headers, &rows)
}

/// A table as CSV with a BOM (so that Excel opens it as UTF-8), every cell
/// neutralised.
pub fn table_csv(headers: &[String], rows: &[Vec<String>]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(headers.iter().map(|h| neutralise(h)))?;
    for row in rows {
        writer.write_record(row.iter().map(|c| neutralise(c)))?;
    }
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?);
    Ok(bytes)
}

/// A table as an XLSX workbook of one sheet: a bold header row, every cell
/// text (never a formula) and neutralised.
pub fn table_xlsx(
    sheet_name: &str,
    headers: &[String],
    rows: &[Vec<String>],
) -> anyhow::Result<Vec<u8>> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name)?;
    let bold = Format::new().set_bold();
    for (col, header) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, u16::try_from(col)?, neutralise(header), &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let line = u32::try_from(r + 1)?;
        for (col, cell) in row.iter().enumerate() {
            // write_string: always a text cell, never a formula.
            sheet.write_string(line, u16::try_from(col)?, neutralise(cell))?;
        }
    }
    Ok(workbook.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_neutralised() {
        for raw in ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(raw).starts_with('\''), "{raw:?}");
        }
        assert_eq!(neutralise("Zoë"), "Zoë");
    }

    #[test]
    fn a_neutralised_cell_reads_back_as_it_was() {
        for raw in [
            "=HYPERLINK(\"x\")",
            "+1 217 555 0100",
            "-2",
            "@home",
            "Zoë",
            "'quoted'",
            "'",
        ] {
            assert_eq!(unneutralise(&neutralise(raw)), raw, "{raw:?}");
        }
        // An apostrophe someone typed before ordinary text is theirs to keep.
        assert_eq!(unneutralise("'90s"), "'90s");
    }

    #[test]
    fn csv_keeps_columns_in_order_with_errors_last() {
        let bytes = to_csv(
            &["Email".into(), "First".into()],
            &[FailedRow {
                cells: vec!["bad".into(), "=cmd".into()],
                errors: "email: invalid".into(),
            }],
        )
        .expect("csv");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert_eq!(
            text,
            "\u{feff}Email,First,Errors\nbad,'=cmd,email: invalid\n"
        );
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let bytes = to_xlsx(
            &["Email".into()],
            &[FailedRow {
                cells: vec!["=1+1".into()],
                errors: "x".into(),
            }],
        )
        .expect("xlsx");
        assert_eq!(&bytes[..2], b"PK");
    }
}
