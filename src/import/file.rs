//! Reading an uploaded file: a CSV file in UTF-8 (with or without BOM) or an
//! Excel workbook's sheet (see [`workbook`]), told apart by their content, or a
//! clear refusal; the delimiter detected, a header row checked, then data rows
//! one at a time.
//!
//! A CSV file uploaded with a request is read in place from the temporary file
//! the upload was written to, a little at a time, however many times it is
//! read: it is never held whole in memory. A workbook is (calamine reads the
//! ZIP archive by random access), within the upload limit.

use std::{borrow::Cow, fs::File, io::Read, ops::Range, os::unix::fs::FileExt};

use super::workbook;
use crate::error::{AppError, AppResult};

/// An uploaded file's bytes: in memory (a feed's download, a retry's rows), or
/// in the temporary file a request's upload was written to.
pub enum Content {
    Bytes(Vec<u8>),
    File(File),
}

impl Content {
    fn len(&self) -> std::io::Result<u64> {
        match self {
            Self::Bytes(bytes) => Ok(bytes.len() as u64),
            Self::File(file) => Ok(file.metadata()?.len()),
        }
    }

    /// The first `n` bytes, or all when there are fewer.
    fn head(&self, n: usize) -> std::io::Result<Cow<'_, [u8]>> {
        match self {
            Self::Bytes(bytes) => Ok(Cow::Borrowed(&bytes[..n.min(bytes.len())])),
            Self::File(file) => {
                let mut head = Vec::with_capacity(n);
                FileRange::new(file, 0, self.len()?)
                    .take(n as u64)
                    .read_to_end(&mut head)?;
                Ok(Cow::Owned(head))
            }
        }
    }

    /// Every byte, for what must be read whole (a workbook).
    fn whole(&self) -> std::io::Result<Cow<'_, [u8]>> {
        match self {
            Self::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            Self::File(file) => {
                let mut all = Vec::new();
                FileRange::new(file, 0, self.len()?).read_to_end(&mut all)?;
                Ok(Cow::Owned(all))
            }
        }
    }
}

/// A byte range of a file, read by position from its start, so that any
/// number of readers share one open file without sharing a cursor.
struct FileRange<'f> {
    file: &'f File,
    at: u64,
    end: u64,
}

impl<'f> FileRange<'f> {
    fn new(file: &'f File, start: u64, end: u64) -> Self {
        Self {
            file,
            at: start,
            end,
        }
    }
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.at)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Where a file's CSV text is: in memory, or a range of a file on disk (its
/// bytes after any BOM, checked to be UTF-8).
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Text(&'a str),
    File {
        file: &'a File,
        start: u64,
        end: u64,
    },
}

impl<'a> Source<'a> {
    fn len(self) -> u64 {
        match self {
            Self::Text(text) => text.len() as u64,
            Self::File { start, end, .. } => end - start,
        }
    }

    /// A reader from byte `from` of the text to its end.
    fn reader(self, from: u64) -> Box<dyn Read + Send + 'a> {
        match self {
            Self::Text(text) => {
                let from = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
                Box::new(&text.as_bytes()[from..])
            }
            Self::File { file, start, end } => Box::new(FileRange::new(file, start + from, end)),
        }
    }

    /// The text of a byte range, which starts and ends between records.
    fn text(self, range: Range<u64>) -> AppResult<Cow<'a, str>> {
        match self {
            Self::Text(text) => {
                let (start, end) = (
                    usize::try_from(range.start).unwrap_or(usize::MAX),
                    usize::try_from(range.end).unwrap_or(usize::MAX),
                );
                text.get(start..end)
                    .map(Cow::Borrowed)
                    .ok_or_else(|| anyhow::anyhow!("a span outside the file's text").into())
            }
            Self::File { .. } => {
                let mut bytes = Vec::new();
                self.reader(range.start)
                    .take(range.end - range.start)
                    .read_to_end(&mut bytes)
                    .map_err(|e| AppError::Internal(e.into()))?;
                String::from_utf8(bytes)
                    .map(Cow::Owned)
                    .map_err(|e| AppError::Internal(e.into()))
            }
        }
    }

    /// The first 64 KiB of text, for detecting the delimiter from its first
    /// line.
    fn head(self) -> String {
        let mut head = Vec::new();
        let _ = self.reader(0).take(64 << 10).read_to_end(&mut head);
        String::from_utf8_lossy(&head).into_owned()
    }
}

/// An upload made ready to read as CSV.
pub struct Upload<'a> {
    text: Text<'a>,
    /// The file's number of its header row: 1 for CSV.
    pub header_row: usize,
    /// A workbook's sheets, in order; none for CSV.
    pub sheets: Vec<String>,
}

/// An upload's CSV text: a workbook's sheet written as CSV, or the file's own.
enum Text<'a> {
    Owned(String),
    Borrowed(&'a str),
    File {
        file: &'a File,
        start: u64,
        end: u64,
    },
}

impl Upload<'_> {
    /// Where the CSV text is read from.
    pub fn source(&self) -> Source<'_> {
        match &self.text {
            Text::Owned(text) => Source::Text(text),
            Text::Borrowed(text) => Source::Text(text),
            Text::File { file, start, end } => Source::File {
                file,
                start: *start,
                end: *end,
            },
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Read an upload: a workbook's `sheet` from `header_row` (see
/// [`workbook::read`]), or a CSV file's text, checked to be UTF-8.
pub fn read<'a>(
    content: &'a Content,
    sheet: Option<&str>,
    header_row: Option<usize>,
) -> AppResult<Upload<'a>> {
    let io = |e: std::io::Error| AppError::Internal(e.into());
    let head = content.head(8).map_err(io)?;
    if workbook::is_zip(&head) {
        let sheet = workbook::read(&content.whole().map_err(io)?, sheet, header_row)?;
        return Ok(Upload {
            text: Text::Owned(sheet.csv),
            header_row: sheet.header_row,
            sheets: sheet.sheets,
        });
    }
    if workbook::is_legacy_excel(&head) {
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
    let text = match content {
        Content::Bytes(bytes) => Text::Borrowed(decode(bytes)?),
        Content::File(file) => {
            let start = if head.starts_with(BOM) {
                BOM.len() as u64
            } else {
                0
            };
            let end = content.len().map_err(io)?;
            check_utf8(FileRange::new(file, start, end))?;
            Text::File { file, start, end }
        }
    };
    Ok(Upload {
        text,
        header_row: 1,
        sheets: Vec::new(),
    })
}

/// Check that a file is UTF-8 a block at a time, or refuse it naming the line
/// where it stops being so.
fn check_utf8(mut reader: impl Read) -> AppResult<()> {
    let mut block = vec![0u8; 64 << 10];
    let (mut carried, mut line) = (0, 1);
    let lines = |bytes: &[u8]| bytes.iter().filter(|b| **b == b'\n').count();
    loop {
        let n = reader
            .read(&mut block[carried..])
            .map_err(|e| AppError::Internal(e.into()))?;
        if n == 0 {
            return if carried == 0 {
                Ok(())
            } else {
                Err(not_utf8(line))
            };
        }
        let filled = carried + n;
        match std::str::from_utf8(&block[..filled]) {
            Ok(_) => {
                line += lines(&block[..filled]);
                carried = 0;
            }
            // A character cut by the block's end: carry it to the next.
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                line += lines(&block[..valid]);
                block.copy_within(valid..filled, 0);
                carried = filled - valid;
            }
            Err(e) => return Err(not_utf8(line + lines(&block[..e.valid_up_to()]))),
        }
    }
}

fn not_utf8(line: usize) -> AppError {
    AppError::bad_input(
        "file",
        format!(
            "is not UTF-8 text: line {line} holds bytes that are not valid UTF-8. \
             In Excel, save it with \"Save As\" and the type \"CSV UTF-8 (Comma delimited)\", then upload it again."
        ),
    )
}

/// Delimiters we detect, in order of preference on a tie.
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// A decoded file with a valid header row.
pub struct CsvFile<'a> {
    source: Source<'a>,
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
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        not_utf8(
            bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1,
        )
    })
}

impl<'a> CsvFile<'a> {
    /// Read the header row of a text; `delimiter` forces one instead of
    /// detecting it.
    pub fn open(text: &'a str, delimiter: Option<u8>) -> AppResult<Self> {
        Self::open_source(Source::Text(text), delimiter)
    }

    /// Read the header row of an upload's text: see [`open`](Self::open).
    pub fn open_source(source: Source<'a>, delimiter: Option<u8>) -> AppResult<Self> {
        let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(&source.head()));
        let mut reader = reader(source.reader(0), delimiter);
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
            source,
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
            reader(self.source.reader(0), self.delimiter),
            true,
            self.headers.len(),
            self.header_row,
        )
    }

    /// The rows of `text`, a [`Span`] of this file's data read apart from
    /// it, numbered after `after` as [`rows`](Self::rows) numbers them.
    pub fn rows_of<'t>(&self, text: &'t str, after: usize) -> impl Iterator<Item = Row> + 't {
        records(
            reader(text.as_bytes(), self.delimiter),
            false,
            self.headers.len(),
            after,
        )
    }

    /// The file cut into its header and spans of whole rows of about
    /// `target` bytes each, so that it can be stored, and read back, a span
    /// at a time: the header's byte range and the spans.
    pub fn spans(&self, target: u64) -> (Range<u64>, Vec<Span>) {
        let mut reader = reader(self.source.reader(0), self.delimiter);
        let mut record = csv::StringRecord::new();
        let _ = reader.read_record(&mut record);
        let len = self.source.len();
        // A record ends at a line break (or the end), so positions between
        // records never split a character.
        let at = |reader: &csv::Reader<_>| reader.position().byte().min(len);
        let header_end = at(&reader);
        let mut spans = Vec::new();
        let mut span = Span {
            range: header_end..header_end,
            after: self.header_row,
            rows: 0,
        };
        let mut number = self.header_row;
        loop {
            let read = reader.read_record(&mut record);
            let end = match read {
                Ok(false) => break,
                Ok(true) => {
                    number += 1;
                    if !record.iter().all(|cell| cell.trim().is_empty()) {
                        span.rows += 1;
                    }
                    at(&reader)
                }
                // The rest of the file is one last problem row.
                Err(_) => {
                    span.rows += 1;
                    len
                }
            };
            span.range.end = end;
            if end - span.range.start >= target || read.is_err() {
                spans.push(span);
                span = Span {
                    range: end..end,
                    after: number,
                    rows: 0,
                };
            }
            if read.is_err() {
                break;
            }
        }
        if span.range.start < len {
            span.range.end = len;
            spans.push(span);
        }
        (0..header_end, spans)
    }

    /// The text of a byte range that [`spans`](Self::spans) gave.
    pub fn text(&self, range: Range<u64>) -> AppResult<Cow<'a, str>> {
        self.source.text(range)
    }
}

/// Whole rows of a file's data, read apart from the file with
/// [`CsvFile::rows_of`].
pub struct Span {
    pub range: Range<u64>,
    /// The number of the row before the span's first.
    pub after: usize,
    /// How many rows (blank ones aside) the span yields.
    pub rows: usize,
}

/// The rows a reader yields, numbered after `number`: see [`CsvFile::rows`].
fn records<R: Read>(
    mut reader: csv::Reader<R>,
    header: bool,
    width: usize,
    mut number: usize,
) -> impl Iterator<Item = Row> {
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

fn reader<R: Read>(from: R, delimiter: u8) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(64 << 10)
        .from_reader(from)
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
        // The same text in memory, and in a file after a BOM.
        let mut on_disk = tempfile::tempfile().expect("a temporary file");
        std::io::Write::write_all(&mut on_disk, &[BOM, text.as_bytes()].concat()).expect("written");
        let on_disk = Content::File(on_disk);
        let upload = read(&on_disk, None, None).expect("UTF-8");
        for source in [Source::Text(text), upload.source()] {
            let file = CsvFile::open_source(source, None)
                .expect("opens")
                .numbered_from(3);
            let whole: Vec<(usize, Vec<String>, Option<String>)> = file
                .rows()
                .map(|r| (r.number, r.cells, r.problem))
                .collect();
            assert_eq!(whole.len(), 6);
            assert_eq!(whole.last().map(|r| r.0), Some(10));
            assert!(whole.last().and_then(|r| r.2.as_ref()).is_some());
            for target in [1, 5, 12, 1000] {
                let (header, spans) = file.spans(target);
                // A record ends at its `\r`; the `\n` after it opens the next
                // span as a blank line, which no reader counts.
                let header = file.text(header).expect("header");
                assert_eq!(header, "a,b\r");
                let mut joined = header.into_owned();
                let mut read = Vec::new();
                for span in &spans {
                    let part = file.text(span.range.clone()).expect("span");
                    joined.push_str(&part);
                    let rows: Vec<_> = file
                        .rows_of(&part, span.after)
                        .map(|r| (r.number, r.cells, r.problem))
                        .collect();
                    assert_eq!(rows.len(), span.rows, "{target}: {part:?}");
                    read.extend(rows);
                }
                assert_eq!(joined, text, "{target}");
                assert_eq!(read, whole, "{target}");
            }
        }
    }

    #[test]
    fn a_file_on_disk_is_checked_to_be_utf8_a_block_at_a_time() {
        // A character cut by a block's end is whole text; a stray byte is not.
        let line = format!("{},é\n", "x".repeat((64 << 10) - 1));
        for (bytes, refused_at) in [
            (line.repeat(3).into_bytes(), None),
            ([line.as_bytes(), b"ok\nJos\xE9\n"].concat(), Some("line 3")),
            ([line.as_bytes(), b"\xC3"].concat(), Some("line 2")),
        ] {
            let mut file = tempfile::tempfile().expect("a temporary file");
            std::io::Write::write_all(&mut file, &bytes).expect("written");
            let content = Content::File(file);
            match (read(&content, None, None), refused_at) {
                (Ok(_), None) => {}
                (Err(err), Some(line)) => assert!(err.to_string().contains(line), "{err}"),
                (Ok(_), Some(line)) => panic!("read, though {line} is not UTF-8"),
                (Err(err), None) => panic!("refused: {err}"),
            }
        }
    }

    #[test]
    fn names_columns_as_a_spreadsheet_does() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
    }
}
