//! JSON text → the spanned tree `parse` walks, so that a config written as
//! JSON (what the admin API's `PUT /config` accepts) goes through exactly
//! the key, type and value checks a TOML file does, with the same paths.
//!
//! serde_json checks the syntax first, and a syntax error is one error at
//! serde_json's line and column: nothing after it can be trusted. serde_json
//! keeps no positions, though, so a second pass walks the checked text and
//! builds a `toml::de::DeTable` whose spans are byte ranges of the JSON.
//! Every later error then points at the JSON `line:column` of its key or
//! value. That pass trusts the syntax it is given, which keeps it to a
//! screenful; the price is reading the text twice, once per load. Its
//! recursion is bounded by serde_json's nesting limit of 128.
//!
//! A JSON number is handed over as its text, which is also a TOML number
//! (JSON's number grammar is a subset of TOML's), so `4`, `1.5` or
//! `99999999999999999999` get the same checks and messages as in TOML.
//!
//! The schema has no null: a key is either set or left out. Each `null` is
//! reported at its path, and the top-level value or array-of-tables element
//! holding it is then left out (see `parse::Syntax`) rather than reported a
//! second time as missing or mistyped. A key written twice in one object is
//! an error, as in TOML, since JSON readers disagree on which one wins.

use std::borrow::Cow;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use crate::error::Reporter;
use crate::parse::{self, key_path, Syntax};
use crate::raw::RawDocument;

/// Parses JSON `src` into a raw document. Returns `None` when the text is
/// not JSON or not an object, after reporting why.
pub(crate) fn parse(src: &str, r: &mut Reporter<'_>) -> Option<RawDocument> {
    // Into a `Value`, which is thrown away, rather than `IgnoredAny`: its
    // messages are more precise ("trailing comma" where the other says "key
    // must be a string").
    if let Err(e) = serde_json::from_str::<serde_json::Value>(src) {
        syntax_error(src, &e, r);
        return None;
    }
    let mut scanner = Scanner {
        src,
        at: 0,
        nulls: Vec::new(),
        r,
    };
    scanner.skip_space();
    let start = scanner.at;
    if scanner.peek() != Some(b'{') {
        let found = match scanner.peek() {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'n') => "null",
            _ => "a single value",
        };
        scanner.r.error(
            "",
            Some(start..start),
            format!("expected an object holding the config, found {found}"),
        );
        return None;
    }
    let Some(DeValue::Table(root)) = scanner.value("", Null::Member).map(Spanned::into_inner)
    else {
        // serde_json accepted this text, so the walk cannot fail; should it,
        // say so rather than validate half a document.
        scanner
            .r
            .error("", Some(scanner.at..scanner.at), "cannot read this JSON");
        return None;
    };
    let Scanner { nulls, r, .. } = scanner;
    Some(parse::document(root, Syntax::Json { nulls: &nulls }, r))
}

/// Reports a serde_json syntax error at its position. serde_json counts
/// columns in bytes; the position goes back to a byte offset so that the
/// reporter counts characters, as it does for every other error.
fn syntax_error(src: &str, e: &serde_json::Error, r: &mut Reporter<'_>) {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    let span = (e.line() > 0).then(|| {
        let line_start: usize = src
            .split_inclusive('\n')
            .take(e.line() - 1)
            .map(str::len)
            .sum();
        let offset = line_start + e.column().saturating_sub(1);
        offset..offset
    });
    r.error("", span, message);
}

/// Where a null was found, which decides how to tell the user to fix it.
#[derive(Debug, Clone, Copy)]
enum Null {
    /// The value of an object member: leave the key out.
    Member,
    /// An array element: remove it.
    Element,
}

/// A walk over JSON text that serde_json has already accepted. Each method
/// returns `None` only if the text is not what serde_json said it was.
struct Scanner<'i, 'r, 's> {
    src: &'i str,
    /// Byte offset of the next unread character.
    at: usize,
    /// Where each `null` starts, for `parse::Syntax::Json`.
    nulls: Vec<usize>,
    r: &'r mut Reporter<'s>,
}

impl<'i> Scanner<'i, '_, '_> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after any whitespace) if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let next = self.peek() == Some(byte);
        if next {
            self.at += 1;
        }
        next
    }

    /// The value starting at the next non-space character, spanning its
    /// text (quotes and brackets included).
    fn value(&mut self, path: &str, null: Null) -> Option<Spanned<DeValue<'i>>> {
        self.skip_space();
        let start = self.at;
        let value = match self.peek()? {
            b'{' => DeValue::Table(self.object(path)?),
            b'[' => DeValue::Array(self.array(path)?),
            b'"' => DeValue::String(self.string()?),
            b't' => self.word("true").then_some(DeValue::Boolean(true))?,
            b'f' => self.word("false").then_some(DeValue::Boolean(false))?,
            b'n' if self.word("null") => {
                let message = match null {
                    Null::Member => {
                        "null is not a value here; leave the key out instead \
                         (an optional key then takes its default)"
                    }
                    Null::Element => "null is not a value here; remove the element",
                };
                self.r.error(path, Some(start..self.at), message);
                self.nulls.push(start);
                // Never deserialized: `parse` leaves out what holds a null.
                DeValue::Table(DeTable::new())
            }
            _ => self.number()?,
        };
        Some(Spanned::new(start..self.at, value))
    }

    fn object(&mut self, path: &str) -> Option<DeTable<'i>> {
        self.at += 1; // '{'
        let mut table = DeTable::new();
        if self.eat(b'}') {
            return Some(table);
        }
        loop {
            self.skip_space();
            let key_start = self.at;
            let key = self.string()?;
            let key_span = key_start..self.at;
            if !self.eat(b':') {
                return None;
            }
            let child_path = key_path(path, &key);
            let value = self.value(&child_path, Null::Member)?;
            if table.contains_key(key.as_ref()) {
                self.r.error(
                    child_path,
                    Some(key_span),
                    "duplicate key: this object already sets it",
                );
            } else {
                table.insert(Spanned::new(key_span, key), value);
            }
            if !self.eat(b',') {
                return self.eat(b'}').then_some(table);
            }
        }
    }

    fn array(&mut self, path: &str) -> Option<DeArray<'i>> {
        self.at += 1; // '['
        let mut items = DeArray::new();
        if self.eat(b']') {
            return Some(items);
        }
        loop {
            let element = self.value(&format!("{path}[{}]", items.len()), Null::Element)?;
            items.push(element);
            if !self.eat(b',') {
                return self.eat(b']').then_some(items);
            }
        }
    }

    /// A string token, borrowed from the text unless it holds escapes.
    fn string(&mut self) -> Option<Cow<'i, str>> {
        let start = self.at;
        let bytes = self.src.as_bytes();
        if bytes.get(start) != Some(&b'"') {
            return None;
        }
        let mut end = start + 1;
        let mut escaped = false;
        loop {
            match *bytes.get(end)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    end += 2;
                }
                _ => end += 1,
            }
        }
        self.at = end + 1;
        if escaped {
            let token = self.src.get(start..self.at)?;
            serde_json::from_str::<String>(token).ok().map(Cow::Owned)
        } else {
            self.src.get(start + 1..end).map(Cow::Borrowed)
        }
    }

    /// `true`, `false` or `null`: consumes `word` if it is next.
    fn word(&mut self, word: &str) -> bool {
        let next = self
            .src
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word));
        if next {
            self.at += word.len();
        }
        next
    }

    /// A number, read by the TOML parser from its JSON text.
    fn number(&mut self) -> Option<DeValue<'i>> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.at += 1;
        }
        let text = self.src.get(start..self.at)?;
        DeValue::parse(text).ok().map(Spanned::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree for `src`, with the errors reported while building it.
    fn tree(src: &str) -> (Option<DeTable<'_>>, Vec<String>) {
        let mut r = Reporter::new(src);
        let mut scanner = Scanner {
            src,
            at: 0,
            nulls: Vec::new(),
            r: &mut r,
        };
        let root = scanner.value("", Null::Member).map(Spanned::into_inner);
        let root = match root {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
        let errors = r.finish().iter().map(ToString::to_string).collect();
        (root, errors)
    }

    #[test]
    fn spans_cover_keys_and_values() {
        let src = "{\n  \"a\": [1, -2.5e3, true],\n  \"b\\u0021\": \"x\\ny\" }";
        let (root, errors) = tree(src);
        assert!(errors.is_empty(), "{errors:?}");
        let root = root.expect("an object");
        let (key, a) = root.get_key_value("a").expect("a");
        assert_eq!(&src[key.span()], "\"a\"");
        assert_eq!(&src[a.span()], "[1, -2.5e3, true]");
        let items = a.get_ref().as_array().expect("array");
        let texts: Vec<&str> = items.iter().map(|v| &src[v.span()]).collect();
        assert_eq!(texts, ["1", "-2.5e3", "true"]);
        assert_eq!(
            items[0].get_ref().as_integer().map(|i| i.as_str()),
            Some("1")
        );
        assert!(items[1].get_ref().is_float());
        let (key, b) = root.get_key_value("b!").expect("escaped key decoded");
        assert_eq!(&src[key.span()], "\"b\\u0021\"");
        assert_eq!(b.get_ref().as_str(), Some("x\ny"));
    }

    #[test]
    fn nulls_and_duplicates_are_reported_where_they_are() {
        let cases: &[(&str, &[&str])] = &[
            (
                "{\"a\": null}",
                &["1:7: a: null is not a value here; leave the key out"],
            ),
            (
                "{\"a\": [1, null]}",
                &["1:11: a[1]: null is not a value here; remove"],
            ),
            ("{\"a\": {\"b c\": null}}", &["1:15: a.\"b c\": null"]),
            ("{\"a\": 1,\n \"a\": 2}", &["2:2: a: duplicate key"]),
        ];
        for &(src, want) in cases {
            let (_, errors) = tree(src);
            assert_eq!(errors.len(), want.len(), "{src}: {errors:?}");
            for (got, want) in errors.iter().zip(want) {
                assert!(got.starts_with(want), "{src}: {got:?} vs {want:?}");
            }
        }
    }
}
