//! Reading an uploaded file: a CSV file in UTF-8 (with or without BOM) or an
//! Excel workbook's sheet (see [`workbook`]), told apart by their content, or a
//! clear refusal; the delimiter detected, a header row checked, then data rows
//! one at a time.

use std::borrow::Cow;

use super::workbook;
use crate::error::{AppError, AppResult};

/// What an upload is, by its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

/// An upload made ready to read as CSV.
pub struct Upload<'a> {
    pub format: Format,
    pub text: Cow<'a, str>,
    /// The file's number of its header row: 1 for CSV.
    pub header_row: usize,
    /// A workbook's sheets, in order; none for CSV.
    pub sheets: Vec<String>,
}

/// Read an upload: a workbook's `sheet` from `header_row` (see
/// [`workbook::read`]), or a CSV file's text.
pub fn read<'a>(
    bytes: &'a [u8],
    sheet: Option<&str>,
    header_row: Option<usize>,
) -> AppResult<Upload<'a>> {
    if workbook::is_zip(bytes) {
        let sheet = workbook::read(bytes, sheet, header_row)?;
        return Ok(Upload {
            format: Format::Xlsx,
            text: Cow::Owned(sheet.csv),
            header_row: sheet.header_row,
            sheets: sheet.sheets,
        });
    }
    if workbook::is_legacy_excel(bytes) {
        return Err(AppError::bad_input(
            "file",
            "is an Excel 97-2003 workbook (.xls), which cannot be read. In Excel, save it with \"Save As\" as an \"Excel Workbook (.xlsx)\" or as \"CSV UTF-8 (Comma delimited)\", then upload it again.",
        ));
    }
    if sheet.is_some_and(|s| !s.trim().is_empty()) {
        return Err(AppError::bad_input(
            "sheet",
            "applies to Excel workbooks; this file is CSV",
        ));
    }
    if header_row.is_some_and(|n| n != 1) {
        return Err(AppError::bad_input(
            "headerRow",
            "applies to Excel workbooks; a CSV file's header is its first row",
        ));
    }
    Ok(Upload {
        format: Format::Csv,
        text: Cow::Borrowed(decode(bytes)?),
        header_row: 1,
        sheets: Vec::new(),
    })
}

/// Delimiters we detect, in order of preference on a tie.
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// A decoded file with a valid header row.
pub struct CsvFile<'a> {
    text: &'a str,
    pub delimiter: u8,
    pub headers: Vec<String>,
    /// The number of the header row; data rows count on from it.
    header_row: usize,
}

/// One data row: its spreadsheet row number (the header is row 1 in a CSV
/// file) and its cells.
#[derive(Clone, Debug)]
pub struct Row {
    pub number: usize,
    pub cells: Vec<String>,
    /// Why the row cannot be read as a whole (wrong number of cells).
    pub problem: Option<String>,
}

/// The file's text, or a refusal naming the line where it stops being UTF-8.
pub fn decode(bytes: &[u8]) -> AppResult<&str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        AppError::bad_input(
            "file",
            format!(
                "is not UTF-8 text: line {line} holds bytes that are not valid UTF-8. \
                 In Excel, save it with \"Save As\" and the type \"CSV UTF-8 (Comma delimited)\", then upload it again."
            ),
        )
    })
}

impl<'a> CsvFile<'a> {
    /// Read the header row; `delimiter` forces one instead of detecting it.
    pub fn open(text: &'a str, delimiter: Option<u8>) -> AppResult<Self> {
        let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(text));
        let mut reader = reader(text, delimiter);
        let mut record = csv::StringRecord::new();
        let found = reader
            .read_record(&mut record)
            .map_err(|e| AppError::bad_input("file", format!("cannot be read as CSV: {e}")))?;
        if !found {
            return Err(AppError::bad_input(
                "file",
                "is empty: it needs a header row naming its columns",
            ));
        }
        let headers: Vec<String> = record.iter().map(|h| h.trim().to_owned()).collect();
        let empty: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.is_empty())
            .map(|(i, _)| column_letter(i))
            .collect();
        if !empty.is_empty() {
            return Err(AppError::bad_input(
                "file",
                format!(
                    "has columns without a header: {}; name every column in the first row",
                    empty.join(", ")
                ),
            ));
        }
        let mut seen = std::collections::BTreeMap::new();
        let mut duplicates = Vec::new();
        for header in &headers {
            let count = seen.entry(header.to_lowercase()).or_insert(0);
            *count += 1;
            if *count == 2 {
                duplicates.push(format!("{header:?}"));
            }
        }
        if !duplicates.is_empty() {
            return Err(AppError::bad_input(
                "file",
                format!(
                    "has the same header more than once: {}; give each column its own name",
                    duplicates.join(", ")
                ),
            ));
        }
        Ok(Self {
            text,
            delimiter,
            headers,
            header_row: 1,
        })
    }

    /// Number the rows from `header_row`, the header's own number.
    #[must_use]
    pub fn numbered_from(mut self, header_row: usize) -> Self {
        self.header_row = header_row;
        self
    }

    /// The data rows, blank ones skipped (though counted, as a spreadsheet
    /// numbers them). A row that the CSV reader cannot split (an unclosed quote)
    /// ends the file with one last problem row.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        records(
            reader(self.text, self.delimiter),
            true,
            self.headers.len(),
            self.header_row,
        )
    }

    /// The rows of `text`, a [`Span`] of this file's data read apart from
    /// it, numbered after `after` as [`rows`](Self::rows) numbers them.
    pub fn rows_of<'t>(&self, text: &'t str, after: usize) -> impl Iterator<Item = Row> + 't {
        records(
            reader(text, self.delimiter),
            false,
            self.headers.len(),
            after,
        )
    }

    /// The file cut into its header and spans of whole rows of about
    /// `target` bytes each, so that it can be stored, and read back, a span
    /// at a time.
    pub fn spans(&self, target: usize) -> (&'a str, Vec<Span<'a>>) {
        let mut reader = reader(self.text, self.delimiter);
        let mut record = csv::StringRecord::new();
        let _ = reader.read_record(&mut record);
        let header_end = offset(&reader, self.text);
        let mut spans = Vec::new();
        let mut span = Span {
            text: "",
            after: self.header_row,
            rows: 0,
        };
        let (mut start, mut number) = (header_end, self.header_row);
        loop {
            let read = reader.read_record(&mut record);
            let end = match read {
                Ok(false) => break,
                Ok(true) => {
                    number += 1;
                    if !record.iter().all(|cell| cell.trim().is_empty()) {
                        span.rows += 1;
                    }
                    offset(&reader, self.text)
                }
                // The rest of the file is one last problem row.
                Err(_) => {
                    span.rows += 1;
                    self.text.len()
                }
            };
            if end - start >= target || read.is_err() {
                span.text = &self.text[start..end];
                spans.push(span);
                span = Span {
                    text: "",
                    after: number,
                    rows: 0,
                };
                start = end;
            }
            if read.is_err() {
                break;
            }
        }
        if start < self.text.len() {
            span.text = &self.text[start..];
            spans.push(span);
        }
        (&self.text[..header_end], spans)
    }
}

/// Whole rows of a file's data, read apart from the file with
/// [`CsvFile::rows_of`].
pub struct Span<'a> {
    pub text: &'a str,
    /// The number of the row before the span's first.
    pub after: usize,
    /// How many rows (blank ones aside) the span yields.
    pub rows: usize,
}

/// Where the reader stands in `text`, on a character boundary.
fn offset(reader: &csv::Reader<&[u8]>, text: &str) -> usize {
    let at = usize::try_from(reader.position().byte()).map_or(text.len(), |b| b.min(text.len()));
    // A record ends at a line break, so this is a boundary; the guard keeps
    // a slice from ever splitting a character.
    (at..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len())
}

/// The rows a reader yields, numbered after `number`: see [`CsvFile::rows`].
fn records<'t>(
    mut reader: csv::Reader<&'t [u8]>,
    header: bool,
    width: usize,
    mut number: usize,
) -> impl Iterator<Item = Row> + 't {
    let mut record = csv::StringRecord::new();
    if header {
        let _ = reader.read_record(&mut record);
    }
    let mut broken = false;
    std::iter::from_fn(move || {
        if broken {
            return None;
        }
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => return None,
                Ok(true) => {
                    number += 1;
                    if record.iter().all(|cell| cell.trim().is_empty()) {
                        continue;
                    }
                    let cells: Vec<String> = record.iter().map(str::to_owned).collect();
                    let problem = (cells.len() != width).then(|| {
                        format!(
                            "has {} cells where the header has {width} columns",
                            cells.len()
                        )
                    });
                    return Some(Row {
                        number,
                        cells,
                        problem,
                    });
                }
                Err(e) => {
                    broken = true;
                    number += 1;
                    return Some(Row {
                        number,
                        cells: Vec::new(),
                        problem: Some(format!("cannot be read: {e}")),
                    });
                }
            }
        }
    })
}

fn reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// The delimiter that splits the header line into the most columns, outside quotes.
fn detect_delimiter(text: &str) -> u8 {
    let header = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|d| *d == b) {
            counts[i] += 1;
        }
    }
    let best = (0..DELIMITERS.len())
        .max_by_key(|i| (counts[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        DELIMITERS[best]
    }
}

/// `A`, `B`, … `Z`, `AA`: how a spreadsheet names column `index`.
pub fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut name = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        name.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Row> {
        CsvFile::open(text, None).expect("opens").rows().collect()
    }

    #[test]
    fn strips_the_bom_and_refuses_what_is_not_utf8_naming_the_line() {
        assert_eq!(decode(b"\xEF\xBB\xBFa,b\n").expect("utf-8"), "a,b\n");
        let err = decode(b"a,b\n1,2\nJos\xE9,3\n").expect_err("latin-1");
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("CSV UTF-8"), "{err}");
    }

    #[test]
    fn detects_comma_semicolon_and_tab() {
        for (text, delimiter) in [
            ("a,b;c\n", b','),
            ("E-mail;Vorname/First name;Surname\n", b';'),
            ("a\tb\tc\n", b'\t'),
            ("\"x;y\",b,c\n", b','),
        ] {
            assert_eq!(
                CsvFile::open(text, None).expect("opens").delimiter,
                delimiter,
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_empty_and_duplicate_headers_by_name() {
        let err = CsvFile::open("email,,name\n", None).err().expect("refused");
        assert!(err.to_string().contains('B'), "{err}");
        let err = CsvFile::open("Email,Name,email\n", None)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("\"email\""), "{err}");
        assert!(CsvFile::open("", None).is_err());
    }

    #[test]
    fn counts_rows_as_a_spreadsheet_and_fails_a_short_row_alone() {
        let rows = rows("a,b\r\n1,2\r\n\r\n\"multi\nline\",3\r\n4\r\n5,6\r\n\r\n\r\n");
        let numbers: Vec<usize> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [2, 3, 4, 5]);
        assert_eq!(rows[1].cells, ["multi\nline", "3"]);
        assert!(
            rows[2]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("1 cells"))
        );
        assert!(rows[3].problem.is_none());
    }

    #[test]
    fn spans_read_apart_yield_the_rows_of_the_whole_file() {
        let text = "a,b\r\n1,2\r\n\r\n\"multi\nline\",3\r\n4\r\n5,6\r\n,\r\n7,8\n\"open,9\n10,11\n";
        let file = CsvFile::open(text, None).expect("opens").numbered_from(3);
        let whole: Vec<(usize, Vec<String>, Option<String>)> = file
            .rows()
            .map(|r| (r.number, r.cells, r.problem))
            .collect();
        for target in [1, 5, 12, 1000] {
            let (header, spans) = file.spans(target);
            // A record ends at its `\r`; the `\n` after it opens the next
            // span as a blank line, which no reader counts.
            assert_eq!(header, "a,b\r");
            let joined: String = spans.iter().map(|s| s.text).collect();
            assert_eq!(format!("{header}{joined}"), text, "{target}");
            let mut read = Vec::new();
            for span in &spans {
                let rows: Vec<_> = file
                    .rows_of(span.text, span.after)
                    .map(|r| (r.number, r.cells, r.problem))
                    .collect();
                assert_eq!(rows.len(), span.rows, "{target}: {:?}", span.text);
                read.extend(rows);
            }
            assert_eq!(read, whole, "{target}");
        }
        assert_eq!(whole.last().map(|r| r.0), Some(10));
        assert!(whole.last().and_then(|r| r.2.as_ref()).is_some());
    }

    #[test]
    fn names_columns_as_a_spreadsheet_does() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
    }
}
