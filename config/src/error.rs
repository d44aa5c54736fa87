//! The errors a config can produce, each naming the field and where it is.
//!
//! A config is fixed by a person reading the error list, so every error
//! carries the field path as it would be written in TOML (`routes[2].upstream`)
//! and the 1-based `line:column` in the source, and validation reports all of
//! them at once instead of stopping at the first: fixing one typo per run is
//! the slow path `ringway validate` exists to avoid. One flat struct rather
//! than an enum of kinds: nothing branches on the kind of a config error, it
//! is only ever shown to someone.
//!
//! Warnings (settings that are allowed but risky) have the same shape and
//! are collected the same way, apart from the errors; they never stop a
//! config from loading.

use std::fmt;

use crate::span::{LineIndex, Position};

/// One problem in a config.
///
/// Displays as `line:column: path: message`; the path is left out when empty
/// (a file that cannot be read, a TOML syntax error) and the position when
/// unknown (`line == 0`, e.g. a required section that is missing altogether).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Located { error: self, file: None })]
pub struct ConfigError {
    /// Field path as written in TOML, e.g. `routes[2].upstream`; empty when
    /// the error is about the document as a whole.
    pub path: String,
    /// 1-based line, or 0 when unknown.
    pub line: usize,
    /// 1-based column in characters, or 0 when unknown.
    pub column: usize,
    /// What is wrong, and where it helps, how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error that is not tied to a place in the source.
    pub(crate) fn unplaced(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    fn at(path: String, position: Position, message: String) -> Self {
        ConfigError {
            path,
            line: position.line,
            column: position.column,
            message,
        }
    }
}

/// Renders one error, optionally prefixed with a file name.
struct Located<'a> {
    error: &'a ConfigError,
    file: Option<&'a str>,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.error;
        if let Some(file) = self.file {
            f.write_str(file)?;
            f.write_str(":")?;
        }
        if e.line != 0 {
            write!(f, "{}:{}:", e.line, e.column)?;
        }
        if self.file.is_some() || e.line != 0 {
            f.write_str(" ")?;
        }
        if !e.path.is_empty() {
            write!(f, "{}: ", e.path)?;
        }
        f.write_str(&e.message)
    }
}

/// Every error found in one config, in source order (errors without a
/// position last). Never empty when returned by this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines { errors: &self.0, file: None })]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Renders one line per error as `FILE:line:column: path: message`, the
    /// shape compilers use, so editors and terminals can jump to the spot.
    ///
    /// ```
    /// let errors = ringway_config::Config::from_toml_str("workers = 0").unwrap_err();
    /// let text = errors.with_file("ringway.toml");
    /// assert!(text.starts_with("ringway.toml:1:11: workers: "), "{text}");
    /// ```
    pub fn with_file(&self, file: &str) -> String {
        Lines {
            errors: &self.0,
            file: Some(file),
        }
        .to_string()
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no errors (never the case for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

struct Lines<'a> {
    errors: &'a [ConfigError],
    file: Option<&'a str>,
}

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            Located {
                error,
                file: self.file,
            }
            .fmt(f)?;
        }
        Ok(())
    }
}

/// Collects errors and warnings while a config is parsed and validated,
/// turning byte spans into positions as they arrive.
#[derive(Debug)]
pub(crate) struct Reporter<'a> {
    lines: LineIndex<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Reporter {
            lines: LineIndex::new(src),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records a warning: something allowed but risky, which does not stop
    /// the config from loading. Placed like [`Reporter::error`].
    pub(crate) fn warn(
        &mut self,
        path: impl Into<String>,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
    ) {
        let position = span.map_or(Position::UNKNOWN, |s| self.lines.position(s.start));
        self.warnings
            .push(ConfigError::at(path.into(), position, message.into()));
    }

    /// The warnings so far, in source order like [`Reporter::finish`].
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut warnings = std::mem::take(&mut self.warnings);
        sort(&mut warnings);
        warnings
    }

    /// Records an error at byte span `span` (only its start is shown), or
    /// without a position when `span` is `None`.
    pub(crate) fn error(
        &mut self,
        path: impl Into<String>,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
    ) {
        let position = span.map_or(Position::UNKNOWN, |s| self.lines.position(s.start));
        self.errors
            .push(ConfigError::at(path.into(), position, message.into()));
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All errors in source order; errors without a position go last. The
    /// sort is stable, so errors at one spot keep the order they were found.
    pub(crate) fn finish(self) -> ConfigErrors {
        let mut errors = self.errors;
        sort(&mut errors);
        ConfigErrors(errors)
    }
}

/// Source order, unplaced last; stable, so reports at one spot keep the
/// order they were made in.
fn sort(reports: &mut [ConfigError]) {
    reports.sort_by_key(|e| (e.line == 0, e.line, e.column));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(path: &str, line: usize, column: usize) -> ConfigError {
        ConfigError {
            path: path.into(),
            line,
            column,
            message: "bad".into(),
        }
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let cases = [
            (
                error("routes[2].upstream", 7, 12),
                "7:12: routes[2].upstream: bad",
            ),
            (error("", 3, 1), "3:1: bad"),
            (error("listeners", 0, 0), "listeners: bad"),
            (error("", 0, 0), "bad"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn with_file_prefixes_every_line() {
        let errors = ConfigErrors(vec![
            error("workers", 1, 11),
            error("", 2, 1),
            error("routes", 0, 0),
        ]);
        assert_eq!(
            errors.with_file("gw.toml"),
            "gw.toml:1:11: workers: bad\ngw.toml:2:1: bad\ngw.toml: routes: bad"
        );
        assert_eq!(
            errors.to_string(),
            "1:11: workers: bad\n2:1: bad\nroutes: bad"
        );
    }

    #[test]
    fn reporter_sorts_by_position_unplaced_last() {
        let src = "a = 1\nb = 2\n";
        let mut r = Reporter::new(src);
        r.error("b", Some(6..7), "second");
        r.error("x", None, "unplaced");
        r.error("a", Some(0..1), "first");
        let got: Vec<String> = r.finish().iter().map(|e| e.to_string()).collect();
        assert_eq!(got, ["1:1: a: first", "2:1: b: second", "x: unplaced"]);
    }

    #[test]
    fn warnings_are_kept_apart_from_errors_in_source_order() {
        let src = "a = 1\nb = 2\n";
        let mut r = Reporter::new(src);
        r.warn("b", Some(6..7), "risky");
        r.warn("a", Some(0..1), "also risky");
        assert!(!r.has_errors());
        let got: Vec<String> = r.take_warnings().iter().map(|e| e.to_string()).collect();
        assert_eq!(got, ["1:1: a: also risky", "2:1: b: risky"]);
        assert!(r.take_warnings().is_empty());
    }
}
