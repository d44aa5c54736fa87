//! Server-sent events: an incremental parser for the providers' streams
//! and the two writers the translated streams use.
//!
//! The parser follows the WHATWG event-stream format (HTML "Server-sent
//! events", §9.2.6 "Interpreting an event stream"): lines end in `\n`,
//! `\r\n` or a lone `\r`; a blank line ends an event; `data:` lines are
//! joined with `\n`; one space after the colon is dropped; `:` lines are
//! comments. It works on bytes, so a split anywhere (mid-line, between `\r`
//! and `\n`, inside a UTF-8 sequence) only delays the event.
//!
//! Trade-off: every byte is looked at once (the scan resumes where the
//! previous feed stopped), and a line that is whole inside one feed is read
//! from the caller's slice without a copy; only a line cut by a feed
//! boundary is copied. The event being built is bounded at [`MAX_EVENT`]
//! (1 MiB): a provider that never sends a blank line cannot grow a
//! worker's memory without limit.

use bytes::BytesMut;

/// The largest event (its lines, field names included) the parser holds.
pub(crate) const MAX_EVENT: usize = 1 << 20;

/// What the client is told when the provider's stream broke that way.
pub(crate) const TOO_LARGE_MESSAGE: &str = "an event of the provider's stream passed 1 MiB";

/// The OpenAI stream's last event.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

/// One event passed more than [`MAX_EVENT`] bytes: the stream is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a server-sent event passed {MAX_EVENT} bytes")
    }
}

/// One complete event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// The `event:` field; empty when the event had none.
    pub(crate) name: &'a [u8],
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: &'a [u8],
}

/// Incremental SSE parser: bytes of an unfinished line or event are kept
/// across feeds.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// The start of a line the previous feed cut.
    line: Vec<u8>,
    /// The event being built.
    name: Vec<u8>,
    data: Vec<u8>,
    /// A `data:` line was seen (an empty `data:` still makes an event).
    has_data: bool,
    /// The previous feed ended in `\r`: a `\n` first in the next one
    /// belongs to that line end.
    after_cr: bool,
    /// Bytes of the event so far, for the bound.
    size: usize,
    /// An event passed the bound; nothing more is parsed.
    broken: bool,
}

impl Parser {
    pub(crate) fn new() -> Parser {
        Parser::default()
    }

    /// Feeds bytes; calls `on_event` for each complete event. Err when one
    /// event passes [`MAX_EVENT`]: the stream is then broken, and every
    /// later feed fails too.
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        mut on_event: impl FnMut(Event<'_>),
    ) -> Result<(), TooLarge> {
        if self.broken {
            return Err(TooLarge);
        }
        let mut rest = data;
        if self.after_cr {
            if let [b'\n', tail @ ..] = rest {
                rest = tail;
            }
            if !data.is_empty() {
                self.after_cr = false;
            }
        }
        while !rest.is_empty() {
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.grow(rest.len())?;
                self.line.extend_from_slice(rest);
                return Ok(());
            };
            self.grow(end + 1)?;
            if self.line.is_empty() {
                self.line_done(&rest[..end], &mut on_event);
            } else {
                self.line.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, &mut on_event);
                // Keep the allocation for the next cut line.
                self.line = line;
                self.line.clear();
            }
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => rest = &rest[end + 2..],
                    Some(_) => rest = &rest[end + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[end + 1..];
            }
        }
        Ok(())
    }

    /// The stream ended: a last line without its end is read, and an event
    /// without its blank line is delivered if it has data.
    pub(crate) fn finish(&mut self, mut on_event: impl FnMut(Event<'_>)) {
        if self.broken {
            return;
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut on_event);
        }
        self.line_done(b"", &mut on_event);
        self.after_cr = false;
    }

    fn grow(&mut self, n: usize) -> Result<(), TooLarge> {
        self.size += n;
        if self.size > MAX_EVENT {
            self.broken = true;
            self.line = Vec::new();
            self.data = Vec::new();
            return Err(TooLarge);
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(Event<'_>)) {
        if line.is_empty() {
            if self.has_data {
                on_event(Event {
                    name: &self.name,
                    data: &self.data,
                });
            }
            self.name.clear();
            self.data.clear();
            self.has_data = false;
            self.size = 0;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.name.clear();
                self.name.extend_from_slice(value);
            }
            // `id` and `retry` mean nothing to a translator.
            _ => {}
        }
    }
}

/// Writes `data: {json}\n\n`.
pub(crate) fn write_data(out: &mut BytesMut, json: &[u8]) {
    out.reserve(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
}

/// Writes `event: NAME\ndata: {json}\n\n`.
pub(crate) fn write_event(out: &mut BytesMut, name: &str, json: &[u8]) {
    out.reserve(name.len() + json.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\n");
    write_data(out, json);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events as (name, data) strings, from one feed per piece, then finish.
    fn parse(pieces: &[&[u8]]) -> Result<Vec<(String, String)>, TooLarge> {
        let mut p = Parser::new();
        let mut got = Vec::new();
        let mut push = |e: Event<'_>| {
            got.push((
                String::from_utf8_lossy(e.name).into_owned(),
                String::from_utf8_lossy(e.data).into_owned(),
            ))
        };
        for piece in pieces {
            p.feed(piece, &mut push)?;
        }
        p.finish(&mut push);
        Ok(got)
    }

    fn ev(name: &str, data: &str) -> (String, String) {
        (name.to_string(), data.to_string())
    }

    #[test]
    fn events_whole_and_split_at_every_piece_size() {
        type Case<'a> = (&'a str, &'a [u8], Vec<(String, String)>);
        let cases: &[Case<'_>] = &[
            (
                "one data line",
                b"data: {\"a\":1}\n\n",
                vec![ev("", "{\"a\":1}")],
            ),
            (
                "crlf",
                b"data: x\r\n\r\ndata: y\r\n\r\n",
                vec![ev("", "x"), ev("", "y")],
            ),
            (
                "lone cr",
                b"data: x\r\rdata: y\r\r",
                vec![ev("", "x"), ev("", "y")],
            ),
            (
                "mixed ends",
                b"data: a\r\ndata: b\rdata: c\n\r\n",
                vec![ev("", "a\nb\nc")],
            ),
            (
                "named",
                b"event: message_start\ndata: {}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n",
                vec![ev("message_start", "{}"), ev("ping", "{\"type\":\"ping\"}")],
            ),
            (
                "multi-line data",
                b"data: a\ndata: b\n\n",
                vec![ev("", "a\nb")],
            ),
            ("no space after colon", b"data:x\n\n", vec![ev("", "x")]),
            (
                "only one space dropped",
                b"data:  x\n\n",
                vec![ev("", " x")],
            ),
            (
                "comment ignored",
                b": keep-alive\n\ndata: x\n\n",
                vec![ev("", "x")],
            ),
            (
                "comment inside event",
                b"data: a\n: hi\ndata: b\n\n",
                vec![ev("", "a\nb")],
            ),
            (
                "other fields ignored",
                b"id: 3\nretry: 10\ndata: x\n\n",
                vec![ev("", "x")],
            ),
            ("no data, no event", b"event: ping\n\n", vec![]),
            ("empty data is an event", b"data:\n\n", vec![ev("", "")]),
            ("field without colon", b"data\n\n", vec![ev("", "")]),
            ("unfinished at end", b"data: x\n", vec![ev("", "x")]),
            ("unfinished line at end", b"data: x", vec![ev("", "x")]),
            (
                "utf-8",
                "data: héllo ✓\n\n".as_bytes(),
                vec![ev("", "héllo ✓")],
            ),
            (
                "blank lines between",
                b"\n\n\ndata: x\n\n\n",
                vec![ev("", "x")],
            ),
            ("done", b"data: [DONE]\n\n", vec![ev("", "[DONE]")]),
        ];
        for (what, input, want) in cases {
            assert_eq!(&parse(&[input]).expect(what), want, "{what}: whole");
            for size in 1..=7 {
                let pieces: Vec<&[u8]> = input.chunks(size).collect();
                assert_eq!(
                    &parse(&pieces).expect(what),
                    want,
                    "{what}: pieces of {size}"
                );
            }
            // Every two-way split too (mid-\r\n, mid-UTF-8).
            for at in 0..=input.len() {
                let (a, b) = input.split_at(at);
                assert_eq!(&parse(&[a, b]).expect(what), want, "{what}: split at {at}");
            }
        }
    }

    #[test]
    fn cr_at_the_end_of_a_feed_then_lf() {
        // "\r" ends one feed, "\n" starts the next: one line end, not two,
        // so no blank line and no early event.
        let got = parse(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]).expect("fits");
        assert_eq!(got, vec![ev("", "a\nb")]);
    }

    #[test]
    fn an_event_over_the_bound_breaks_the_stream() {
        let mut p = Parser::new();
        let mut n = 0;
        let line = vec![b'x'; 64 * 1024];
        let mut result = p.feed(b"data: ", |_| n += 1);
        for _ in 0..20 {
            if result.is_err() {
                break;
            }
            result = p.feed(&line, |_| n += 1);
        }
        assert_eq!(result, Err(TooLarge));
        assert_eq!(p.feed(b"\n\n", |_| n += 1), Err(TooLarge));
        p.finish(|_| n += 1);
        assert_eq!(n, 0);

        // Many events, each small, never add up to the bound.
        let mut p = Parser::new();
        let mut n = 0;
        for _ in 0..40 {
            p.feed(&[b"data: ".as_slice(), &line, b"\n\n"].concat(), |_| n += 1)
                .expect("each event is small");
        }
        assert_eq!(n, 40);
    }

    #[test]
    fn writers() {
        let mut out = BytesMut::new();
        write_data(&mut out, b"{\"a\":1}");
        write_event(&mut out, "ping", b"{}");
        out.extend_from_slice(DONE);
        assert_eq!(
            &out[..],
            b"data: {\"a\":1}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n"
        );
    }
}
