//! Reading an uploaded Excel workbook (`.xlsx`): one sheet, from its header
//! row, as the CSV text the rest of the import reads.
//!
//! Cells are read as the text a person sees in them: text as it is (leading
//! zeros of ZIP codes and employee numbers kept, whether typed as text or as a
//! number formatted `00000`), numbers in the cell's own format of digits
//! (`000-00-0000`, `#,##0.00`) or else as Excel's General format shows them,
//! dates as `YYYY-MM-DD`, and a formula as the value Excel saved with it; a
//! formula is never evaluated here.

use std::io::Cursor;

use calamine::{Data, Reader, StyleRange, Xlsx};

use super::number_format;
use crate::error::{AppError, AppResult};

/// A workbook's chosen sheet, written as CSV from its header row.
pub struct SheetText {
    /// The header row and every row below it, blank rows kept as rows of
    /// empty cells so that row numbers stay the sheet's.
    pub csv: String,
    /// The sheet's number of the header row (the first row is 1).
    pub header_row: usize,
    /// Every sheet of the workbook, in order.
    pub sheets: Vec<String>,
}

/// Whether the bytes are a ZIP archive, as every `.xlsx` is.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Whether the bytes are an OLE compound file: an Excel 97-2003 `.xls`.
pub fn is_legacy_excel(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")
}

/// Read `sheet` (the first when absent) from `header_row` (the first
/// non-empty row when absent).
pub fn read(bytes: &[u8], sheet: Option<&str>, header_row: Option<usize>) -> AppResult<SheetText> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| {
        AppError::bad_input(
            "file",
            format!("is not an Excel workbook (.xlsx) that can be read: {e}"),
        )
    })?;
    let sheets = workbook.sheet_names();
    let name = match sheet.map(str::trim).filter(|s| !s.is_empty()) {
        Some(wanted) => sheets
            .iter()
            .find(|s| s.eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or_else(|| {
                AppError::bad_input(
                    "sheet",
                    format!(
                        "is not a sheet of this workbook; its sheets are: {}",
                        sheets.join(", ")
                    ),
                )
            })?,
        None => sheets
            .first()
            .cloned()
            .ok_or_else(|| AppError::bad_input("file", "is a workbook without sheets"))?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| AppError::bad_input("file", format!("sheet {name:?} cannot be read: {e}")))?;
    let styles = workbook
        .worksheet_style(&name)
        .map_err(|e| AppError::bad_input("file", format!("sheet {name:?} cannot be read: {e}")))?;
    // The range starts at the sheet's first used cell; numbers here are the
    // sheet's own (row 1 is the first).
    let (top, left) = range.start().unwrap_or((0, 0));
    let first_used = top as usize + 1;
    let rows: Vec<Vec<String>> = range
        .rows()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, cell)| {
                    let at = (top + i as u32, left + j as u32);
                    text(cell, number_format(&styles, at))
                })
                .collect()
        })
        .collect();
    let blank = |row: &[String]| row.iter().all(|c| c.trim().is_empty());
    let header_row = match header_row {
        Some(0) => return Err(AppError::bad_input("headerRow", "counts from 1")),
        Some(n) => n,
        None => rows
            .iter()
            .position(|r| !blank(r))
            .map_or(first_used, |i| first_used + i),
    };
    let start = header_row.checked_sub(first_used);
    let header = start.and_then(|i| rows.get(i)).filter(|r| !blank(r));
    let Some(header) = header else {
        return Err(AppError::bad_input(
            "headerRow",
            format!("row {header_row} of sheet {name:?} is empty: it must name the columns"),
        ));
    };
    // Columns end where the header's names do.
    let width = header
        .iter()
        .rposition(|c| !c.trim().is_empty())
        .map_or(0, |i| i + 1);
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows.into_iter().skip(start.unwrap_or(0)) {
        // Cells past the header's columns count only when they hold
        // something: a row that overflows is reported as from a CSV file.
        let mut cells = row;
        while cells.len() > width && cells.last().is_some_and(|c| c.trim().is_empty()) {
            cells.pop();
        }
        cells.resize(cells.len().max(width), String::new());
        writer
            .write_record(&cells)
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    let csv = writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let csv = String::from_utf8(csv).map_err(|e| AppError::Internal(e.into()))?;
    Ok(SheetText {
        csv,
        header_row,
        sheets,
    })
}

/// The number format of the cell at `at` (row and column from 0), unless it
/// is General.
fn number_format(styles: &StyleRange, at: (u32, u32)) -> Option<&str> {
    let code = styles.get(at)?.number_format.as_ref()?.format_code.as_str();
    (!code.eq_ignore_ascii_case("general")).then_some(code)
}

/// A cell as the text a person sees in it, `format` being its number format.
fn text(cell: &Data, format: Option<&str>) -> String {
    let shown = |value: f64| {
        format
            .and_then(|code| number_format::show(value, code))
            .unwrap_or_else(|| number(value))
    };
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        #[expect(
            clippy::cast_precision_loss,
            reason = "a cell's integer is an f64 in Excel"
        )]
        Data::Int(i) => shown(*i as f64),
        Data::Float(f) => shown(*f),
        Data::Bool(true) => "TRUE".to_owned(),
        Data::Bool(false) => "FALSE".to_owned(),
        Data::DateTime(value) => match value.as_datetime() {
            Some(at) if value.is_datetime() && at.time() == chrono::NaiveTime::MIN => {
                at.date().format("%Y-%m-%d").to_string()
            }
            Some(at) if value.is_datetime() => at.format("%Y-%m-%d %H:%M:%S").to_string(),
            _ => number(value.as_f64()),
        },
        Data::Error(e) => e.to_string(),
    }
}

/// A number as Excel's General format shows it: whole numbers without a
/// decimal point, others with the digits they need.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_excel_shows_them() {
        assert_eq!(number(2134.0), "2134");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1e20), "100000000000000000000");
    }

    #[test]
    fn a_file_that_is_not_a_workbook_is_refused() {
        let Err(AppError::BadInput(fields)) = read(b"PK\x03\x04 not really", None, None) else {
            panic!("a broken archive was read");
        };
        assert_eq!(fields[0].field, "file");
    }
}
