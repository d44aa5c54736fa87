//! Byte offsets → 1-based `line:column`.
//!
//! The TOML parser reports every position as a byte range into the source,
//! but people (and editors' "go to line" prompts) think in lines and columns.
//! This module owns that translation. It indexes line starts once per source
//! (one `usize` per line, so ~8 bytes per line of config) and answers each
//! lookup with a binary search, instead of rescanning the source per error.
//! Columns count Unicode scalar values, not bytes, so a column points at the
//! same character an editor shows for a line holding non-ASCII text.

/// A 1-based line and column; `Position::UNKNOWN` (0:0) when there is no span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Position {
    pub(crate) const UNKNOWN: Position = Position { line: 0, column: 0 };
}

/// Line starts of one source text.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    /// Byte offset where each line starts; always holds at least `0`.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { src, starts }
    }

    /// The position of byte `offset`. Offsets past the end clamp to the end;
    /// offsets inside a multi-byte character point at that character.
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.src.len());
        // `starts[0] == 0 <= offset`, so the partition point is at least 1.
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self
            .src
            .get(start..)
            .unwrap_or_default()
            .char_indices()
            .take_while(|&(i, c)| start + i + c.len_utf8() <= offset)
            .count();
        Position {
            line,
            column: column + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let src = "ab\ncd\n\né = 1\n";
        let cases: &[(usize, (usize, usize))] = &[
            (0, (1, 1)),
            (1, (1, 2)),
            (2, (1, 3)), // the newline itself belongs to line 1
            (3, (2, 1)),
            (4, (2, 2)),
            (6, (3, 1)),
            (7, (4, 1)),
            (8, (4, 1)),  // inside the two-byte 'é'
            (9, (4, 2)),  // the space after 'é' is column 2, not 3
            (10, (4, 3)), // '='
            (14, (5, 1)), // end of input
            (99, (5, 1)), // clamped
        ];
        let index = LineIndex::new(src);
        for &(offset, (line, column)) in cases {
            assert_eq!(
                index.position(offset),
                Position { line, column },
                "offset {offset}"
            );
        }
    }

    #[test]
    fn empty_source() {
        let index = LineIndex::new("");
        assert_eq!(index.position(0), Position { line: 1, column: 1 });
    }

    #[test]
    fn crlf_lines() {
        let index = LineIndex::new("a = 1\r\nb = 2\r\n");
        assert_eq!(index.position(7), Position { line: 2, column: 1 });
    }
}
