//! Numbers as an Excel number format of digit placeholders shows them: a ZIP
//! code typed as `2134` in a column formatted `00000` reads `02134`, an
//! employee number `000-00-0417`, an amount `#,##0.00` `1,234.50`.
//!
//! Only formats made of digit placeholders (`0`, `#`, `?`), one decimal
//! point, thousands separators and literal text are shown here. Any other
//! format (General, percentages, scientific, fractions, conditions, text) is
//! left to the caller, which shows the number as General does; dates never
//! reach here.

/// `value` as the number format `code` shows it, or `None` when the format is
/// not one of digits.
pub fn show(value: f64, code: &str) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    let sections = split_sections(code);
    // Sections are for positive numbers, negative ones, then zero. A negative
    // number shown by the first section keeps its sign; its own section shows
    // it without one (the format writes `-` or brackets itself).
    let (section, sign) = match (sections.as_slice(), value) {
        ([first, ..], v) if v > 0.0 => (first, ""),
        ([first], v) if v < 0.0 => (first, "-"),
        ([_, negative, ..], v) if v < 0.0 => (negative, ""),
        ([_, _, zero, ..], _) => (zero, ""),
        ([first, ..], _) => (first, ""),
        ([], _) => return None,
    };
    let tokens = tokens(section)?;
    let shown = render(value.abs(), &tokens)?;
    Some(format!("{sign}{shown}"))
}

/// A piece of a format section.
#[derive(Debug, PartialEq)]
enum Token {
    /// `0` (always a digit), `#` (a digit when there is one) or `?` (a digit,
    /// else a space).
    Digit(char),
    Point,
    /// `,` between digits: group thousands.
    Thousands,
    Text(String),
}

/// The sections of a format, split at each `;` outside quotes.
fn split_sections(code: &str) -> Vec<&str> {
    let mut sections = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in code.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                sections.push(&code[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    sections.push(&code[start..]);
    sections
}

/// A section's tokens, or `None` when it is not a format of digits.
fn tokens(section: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = section.chars().peekable();
    let text = |tokens: &mut Vec<Token>, s: &str| match tokens.last_mut() {
        Some(Token::Text(t)) => t.push_str(s),
        _ => tokens.push(Token::Text(s.to_owned())),
    };
    while let Some(c) = chars.next() {
        match c {
            '0' | '#' | '?' => tokens.push(Token::Digit(c)),
            '.' if !tokens.contains(&Token::Point) => tokens.push(Token::Point),
            ',' => tokens.push(Token::Thousands),
            '"' => {
                let quoted: String = chars.by_ref().take_while(|&c| c != '"').collect();
                text(&mut tokens, &quoted);
            }
            '\\' => text(&mut tokens, &chars.next()?.to_string()),
            // `_x` leaves the width of x blank; `*x` fills the cell with x.
            '_' => {
                chars.next()?;
                text(&mut tokens, " ");
            }
            '*' => {
                chars.next()?;
            }
            '[' => {
                let inside: String = chars.by_ref().take_while(|&c| c != ']').collect();
                match inside.strip_prefix('$') {
                    // A currency and locale, `[$€-407]`, shows its symbol.
                    Some(currency) => {
                        let symbol = currency.split('-').next().unwrap_or_default();
                        text(&mut tokens, symbol);
                    }
                    // A colour, `[Red]`, changes nothing in the text; a
                    // condition, `[<=9999999]`, is not a format of digits.
                    None if inside.chars().all(char::is_alphanumeric) => {}
                    None => return None,
                }
            }
            '$' | '-' | '+' | '(' | ')' | ':' | '^' | '\'' | '{' | '}' | '<' | '>' | '=' | '!'
            | '&' | '~' | ' ' => text(&mut tokens, &c.to_string()),
            _ => return None,
        }
    }
    // Thousands separators count only between digits; one after the last
    // digit scales the number by a thousand, which is not shown here. A
    // section of text alone shows its text.
    let digit = |t: &Token| matches!(t, Token::Digit(_));
    let first = tokens.iter().position(digit);
    let last = tokens.iter().rposition(digit);
    let stray = tokens.iter().enumerate().any(|(i, t)| {
        *t == Token::Thousands && !(first.is_some_and(|f| f < i) && last.is_some_and(|l| i < l))
    });
    (!stray).then_some(tokens)
}

/// A non-negative value through a section's tokens.
fn render(value: f64, tokens: &[Token]) -> Option<String> {
    let point = tokens.iter().position(|t| *t == Token::Point);
    let (whole, fraction) = tokens.split_at(point.unwrap_or(tokens.len()));
    let fraction = fraction.get(1..).unwrap_or_default();
    let places = fraction
        .iter()
        .filter(|t| matches!(t, Token::Digit(_)))
        .count();
    let thousands = whole.contains(&Token::Thousands);
    let written = format!("{value:.places$}");
    let (int_digits, frac_digits) = written.split_once('.').unwrap_or((&written, ""));
    // Digits beyond f64's precision are not what anyone typed.
    if int_digits.len() > 15 {
        return None;
    }
    let int_digits = if int_digits == "0" { "" } else { int_digits };

    let mut out = String::new();
    let slots = whole
        .iter()
        .filter(|t| matches!(t, Token::Digit(_)))
        .count();
    let digits: Vec<char> = int_digits.chars().collect();
    let missing = slots.saturating_sub(digits.len());
    let extra = digits.len().saturating_sub(slots);
    let mut slot = 0;
    let mut placed = Vec::new();
    for token in whole {
        match token {
            Token::Digit(kind) => {
                if slot == 0 {
                    placed.extend_from_slice(&digits[..extra]);
                }
                if slot < missing {
                    match kind {
                        '0' => placed.push('0'),
                        '?' => placed.push(' '),
                        _ => {}
                    }
                } else {
                    placed.push(digits[extra + slot - missing]);
                }
                slot += 1;
            }
            Token::Text(t) if !thousands => {
                out.extend(placed.drain(..));
                out.push_str(t);
            }
            Token::Text(t) => {
                out.push_str(&group(&placed));
                placed.clear();
                out.push_str(t);
            }
            Token::Thousands | Token::Point => {}
        }
    }
    if thousands {
        out.push_str(&group(&placed));
    } else {
        out.extend(placed);
    }

    if point.is_some() {
        out.push('.');
        // Trailing zeros show only where the format asks for them.
        let kinds: Vec<char> = fraction
            .iter()
            .filter_map(|t| match t {
                Token::Digit(k) => Some(*k),
                _ => None,
            })
            .collect();
        let mut shown: Vec<char> = frac_digits.chars().collect();
        for i in (0..shown.len()).rev() {
            if shown[i] != '0' || kinds[i] == '0' {
                break;
            }
            shown[i] = if kinds[i] == '?' { ' ' } else { '\0' };
        }
        let mut next = shown.into_iter().filter(|&c| c != '\0');
        for token in fraction {
            match token {
                Token::Digit(_) => out.extend(next.next()),
                Token::Text(t) => out.push_str(t),
                Token::Thousands | Token::Point => {}
            }
        }
    }
    Some(out)
}

/// Digits with a comma between each group of three, from the right; spaces
/// that stand for absent digits stay where they are.
fn group(digits: &[char]) -> String {
    let count = digits.iter().filter(|c| c.is_ascii_digit()).count();
    let mut out = String::new();
    let mut seen = 0;
    for &c in digits {
        out.push(c);
        if c.is_ascii_digit() {
            seen += 1;
            if seen < count && (count - seen) % 3 == 0 {
                out.push(',');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn leading_zeros_of_codes_are_kept() {
        assert_eq!(show(2134.0, "00000").as_deref(), Some("02134"));
        assert_eq!(show(417.0, "000000").as_deref(), Some("000417"));
        assert_eq!(
            show(21_341_234.0, "00000-0000").as_deref(),
            Some("02134-1234")
        );
        assert_eq!(
            show(12_345_678.0, "000-00-0000").as_deref(),
            Some("012-34-5678")
        );
        assert_eq!(show(42.0, "\"EMP\"0000").as_deref(), Some("EMP0042"));
        assert_eq!(show(42.0, "[$-409]00000").as_deref(), Some("00042"));
        // Digits beyond the placeholders are all shown.
        assert_eq!(show(1_234_567.0, "00000").as_deref(), Some("1234567"));
    }

    #[test]
    fn amounts_show_their_places_and_thousands() {
        assert_eq!(show(1_234_567.0, "#,##0").as_deref(), Some("1,234,567"));
        assert_eq!(show(999.0, "#,##0").as_deref(), Some("999"));
        assert_eq!(show(3.5, "0.00").as_deref(), Some("3.50"));
        assert_eq!(show(0.5, "#.##").as_deref(), Some(".5"));
        assert_eq!(show(2.0, "0.0#").as_deref(), Some("2.0"));
        assert_eq!(
            show(1234.5, "[$$-409]#,##0.00").as_deref(),
            Some("$1,234.50")
        );
        assert_eq!(
            show(-1234.5, "#,##0.00;[Red](#,##0.00)").as_deref(),
            Some("(1,234.50)")
        );
        assert_eq!(show(-7.0, "0000").as_deref(), Some("-0007"));
        assert_eq!(show(0.0, "0;-0;\"none\"").as_deref(), Some("none"));
        assert_eq!(show(12.0, "_(0_)").as_deref(), Some(" 12 "));
    }

    #[test]
    fn other_formats_are_left_to_general() {
        for code in [
            "General",
            "0%",
            "0.00E+00",
            "# ?/?",
            "@",
            "[<=9999999]###-####;(###) ###-####",
            "#,",
        ] {
            assert_eq!(show(5.0, code), None, "{code}");
        }
        assert_eq!(show(f64::NAN, "0"), None);
        assert_eq!(show(1e20, "0"), None);
    }
}
