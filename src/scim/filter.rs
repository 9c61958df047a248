//! SCIM filters and attribute paths (RFC 7644 §3.4.2.2 and §3.5.2).
//!
//! ```text
//! filter     = or
//! or         = and *("or" and)
//! and        = not *("and" not)
//! not        = "not" "(" filter ")" / "(" filter ")" / attrExp / valuePath
//! attrExp    = attrPath "pr" / attrPath compareOp compValue
//! valuePath  = attrPath "[" filter "]"
//! attrPath   = [URI ":"] ATTRNAME ["." subAttr]
//! ```
//!
//! Operators and attribute names are case-insensitive. A filter is parsed
//! into a [`Filter`] here; the resource modules turn it into SQL (lists) or
//! evaluate it against a JSON value (PATCH paths such as
//! `members[value eq "…"]`).

use std::fmt;

use serde_json::Value;

/// An attribute, as a filter or a PATCH path names it: its schema (for an
/// extension), its name and a sub-attribute. Names keep their case; compare
/// them with [`AttrPath::is`].
#[derive(Clone, Debug, PartialEq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Whether this names `name` (and `sub`), ignoring case.
    pub fn is(&self, name: &str, sub: Option<&str>) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && match (&self.sub, sub) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, Op, Value),
    /// `emails[type eq "work"]`: the inner filter applies to each value of
    /// the multi-valued attribute, whose sub-attributes it names bare.
    Values(AttrPath, Box<Filter>),
}

/// A PATCH operation's target: an attribute, maybe narrowed to some of its
/// values, maybe a sub-attribute of those (`emails[type eq "work"].value`).
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter.
    pub sub: Option<String>,
}

/// Why a filter or path could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest filter read, in characters: a bound on parsing work.
const MAX_LEN: usize = 4096;
/// The deepest nesting of parentheses and `not`.
const MAX_DEPTH: usize = 32;

pub fn parse_filter(text: &str) -> Result<Filter, SyntaxError> {
    let mut parser = Parser::new(text)?;
    let filter = parser.or(0)?;
    parser.end()?;
    Ok(filter)
}

pub fn parse_path(text: &str) -> Result<PatchPath, SyntaxError> {
    let mut parser = Parser::new(text)?;
    let attr = parser.attr_path()?;
    let mut path = PatchPath {
        attr,
        filter: None,
        sub: None,
    };
    if parser.eat('[') {
        path.filter = Some(parser.or(1)?);
        parser.expect(']')?;
        if parser.eat('.') {
            path.sub = Some(parser.name()?);
        }
    }
    parser.end()?;
    Ok(path)
}

/// Whether a value of an attribute (an object for a complex one) matches a
/// filter naming its sub-attributes, as in a PATCH path's value filter.
pub fn matches(filter: &Filter, value: &Value) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, value) && matches(b, value),
        Filter::Or(a, b) => matches(a, value) || matches(b, value),
        Filter::Not(inner) => !matches(inner, value),
        Filter::Present(path) => lookup(value, path).is_some_and(|v| !v.is_null()),
        Filter::Compare(path, op, expected) => {
            lookup(value, path).is_some_and(|actual| compare(actual, *op, expected))
        }
        Filter::Values(path, inner) => match lookup(value, path) {
            Some(Value::Array(items)) => items.iter().any(|item| matches(inner, item)),
            Some(item) => matches(inner, item),
            None => false,
        },
    }
}

/// The value a path names inside `value`, by case-insensitive keys.
fn lookup<'a>(value: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let first = get_ci(value, &path.name)?;
    match &path.sub {
        Some(sub) => get_ci(first, sub),
        None => Some(first),
    }
}

/// A member of an object by case-insensitive key.
pub fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A comparison of one value, strings compared without case (the
/// attributes Rollcall filters on are not case-exact but `id`, which is
/// compared as given by the resource modules).
pub fn compare(actual: &Value, op: Op, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Co => a.contains(&b),
                Op::Sw => a.starts_with(&b),
                Op::Ew => a.ends_with(&b),
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
        (Value::Number(a), Value::Number(b)) => {
            let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
                return false;
            };
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Co | Op::Sw | Op::Ew => false,
            }
        }
        (_, Value::Null) => matches!(op, Op::Ne),
        _ => matches!(op, Op::Ne),
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self, SyntaxError> {
        if text.chars().count() > MAX_LEN {
            return Err(SyntaxError(format!("is longer than {MAX_LEN} characters")));
        }
        Ok(Self { text, at: 0 })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn end(&mut self) -> Result<(), SyntaxError> {
        if self.peek().is_none() {
            Ok(())
        } else {
            Err(self.error("unexpected text"))
        }
    }

    fn error(&self, what: &str) -> SyntaxError {
        let near: String = self.rest().chars().take(20).collect();
        if near.is_empty() {
            SyntaxError(format!("{what} at the end"))
        } else {
            SyntaxError(format!("{what} at \"{near}\""))
        }
    }

    /// The next word (letters, digits, `_`, `-`, `$`), without consuming it.
    fn word(&mut self) -> &'a str {
        self.skip_space();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$'))
            .unwrap_or(rest.len());
        &rest[..len]
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let word = self.word();
        if word.eq_ignore_ascii_case(keyword) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<String, SyntaxError> {
        let word = self.word();
        if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '$') {
            return Err(self.error("expected an attribute name"));
        }
        self.at += word.len();
        Ok(word.to_owned())
    }

    fn attr_path(&mut self) -> Result<AttrPath, SyntaxError> {
        self.skip_space();
        let rest = self.rest();
        // An extension's attribute: `urn:…:User:employeeNumber`. The name is
        // what follows the last colon of the token.
        if rest.len() >= 4 && rest[..4].eq_ignore_ascii_case("urn:") {
            let len = rest
                .find(|c: char| c.is_whitespace() || c == '[' || c == '(' || c == ')' || c == ']')
                .unwrap_or(rest.len());
            let token = &rest[..len];
            let (urn, attr) = token
                .rsplit_once(':')
                .ok_or_else(|| self.error("expected an attribute after the schema"))?;
            let (name, sub) = match attr.split_once('.') {
                Some((name, sub)) => (name, Some(sub.to_owned())),
                None => (attr, None),
            };
            if name.is_empty() {
                return Err(self.error("expected an attribute after the schema"));
            }
            self.at += len;
            return Ok(AttrPath {
                urn: Some(urn.to_owned()),
                name: name.to_owned(),
                sub,
            });
        }
        let name = self.name()?;
        let sub = if self.rest().starts_with('.') {
            self.at += 1;
            Some(self.name()?)
        } else {
            None
        };
        Ok(AttrPath {
            urn: None,
            name,
            sub,
        })
    }

    fn or(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        let mut left = self.not(depth)?;
        while self.keyword("and") {
            let right = self.not(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        let save = self.at;
        if self.keyword("not") {
            if self.peek() == Some('(') {
                self.expect('(')?;
                let inner = self.or(depth + 1)?;
                self.expect(')')?;
                return Ok(Filter::Not(Box::new(inner)));
            }
            // An attribute named `not…`: read it as one.
            self.at = save;
        }
        if self.eat('(') {
            let inner = self.or(depth + 1)?;
            self.expect(')')?;
            return Ok(inner);
        }
        let path = self.attr_path()?;
        if self.eat('[') {
            let inner = self.or(depth + 1)?;
            self.expect(']')?;
            return Ok(Filter::Values(path, Box::new(inner)));
        }
        if self.keyword("pr") {
            return Ok(Filter::Present(path));
        }
        let word = self.word();
        let op = Op::parse(word).ok_or_else(|| self.error("expected an operator"))?;
        self.at += word.len();
        let value = self.value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        match self.peek() {
            Some('"') => {
                // A JSON string, escapes and all.
                let rest = self.rest();
                let mut escaped = false;
                let mut end = None;
                for (i, c) in rest.char_indices().skip(1) {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| self.error("unterminated string"))?;
                let value: Value = serde_json::from_str(&rest[..=end])
                    .map_err(|_| self.error("invalid string"))?;
                self.at += end + 1;
                Ok(value)
            }
            Some(_) => {
                let word = self.word();
                let value = match word.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => {
                        let rest = self.rest();
                        let len = rest
                            .find(|c: char| {
                                !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                            })
                            .unwrap_or(rest.len());
                        let number: Value = serde_json::from_str(&rest[..len])
                            .map_err(|_| self.error("expected a value"))?;
                        self.at += len;
                        return Ok(number);
                    }
                };
                self.at += word.len();
                Ok(value)
            }
            None => Err(self.error("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attr(name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub: sub.map(Into::into),
        }
    }

    #[test]
    fn reads_the_filters_of_rfc_7644() {
        // RFC 7644 §3.4.2.2's examples.
        for text in [
            r#"userName Eq "john""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r"title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            assert!(
                parse_filter(text).is_ok(),
                "{text}: {:?}",
                parse_filter(text)
            );
        }
    }

    #[test]
    fn builds_the_tree_with_and_before_or() {
        let filter = parse_filter(r#"a eq 1 or b pr and not (c eq "x")"#).unwrap();
        assert_eq!(
            filter,
            Filter::Or(
                Box::new(Filter::Compare(attr("a", None), Op::Eq, json!(1))),
                Box::new(Filter::And(
                    Box::new(Filter::Present(attr("b", None))),
                    Box::new(Filter::Not(Box::new(Filter::Compare(
                        attr("c", None),
                        Op::Eq,
                        json!("x")
                    ))))
                ))
            )
        );
        let ext = parse_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42""#,
        )
        .unwrap();
        let Filter::Compare(path, _, _) = ext else {
            panic!("{ext:?}")
        };
        assert_eq!(
            path.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(path.name, "employeeNumber");
    }

    #[test]
    fn refuses_what_is_not_a_filter() {
        for text in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName xx "a""#,
            r#"userName eq "open"#,
            r#"(userName eq "a""#,
            r#"userName eq "a" extra"#,
            r#"emails[type eq "work""#,
        ] {
            assert!(parse_filter(text).is_err(), "{text}");
        }
        let deep = format!("{}a pr{}", "(".repeat(100), ")".repeat(100));
        assert!(parse_filter(&deep).is_err());
    }

    #[test]
    fn reads_patch_paths() {
        let path = parse_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert!(path.attr.is("members", None));
        assert!(path.filter.is_some());
        let path = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(path.sub.as_deref(), Some("value"));
        let path = parse_path("name.givenName").unwrap();
        assert!(path.attr.is("name", Some("givenName")));
        let path =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
                .unwrap();
        assert!(path.attr.is("department", None));
    }

    #[test]
    fn value_filters_match_json_values() {
        let filter = parse_filter(r#"type eq "WORK" and primary eq true"#).unwrap();
        assert!(matches(
            &filter,
            &json!({ "type": "work", "primary": true, "value": "a@b.org" })
        ));
        assert!(!matches(
            &filter,
            &json!({ "type": "home", "primary": true })
        ));
        let filter = parse_filter(r#"value eq "id-1""#).unwrap();
        assert!(matches(&filter, &json!({ "value": "id-1" })));
        assert!(!matches(&filter, &json!({ "value": "id-2" })));
    }
}
