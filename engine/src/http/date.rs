//! The `Date` header (RFC 9110 §6.6.1), formatted once per second per worker.
//!
//! Formatting an IMF-fixdate costs far more than the rest of a responder
//! answer, so each worker thread keeps the current line cached and
//! rebuilds it only when the wall-clock second changes.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n` is 37 bytes.
const LINE_LEN: usize = 37;

struct Cached {
    second: u64,
    line: [u8; LINE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, line: [0; LINE_LEN] }) };
}

/// Appends the current `Date: …\r\n` line to `out`.
pub(crate) fn append_date_line(out: &mut bytes::BytesMut) {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.second != second {
            // Formatted in place: no allocation even once a second.
            let mut line = [0u8; LINE_LEN];
            let mut cursor = &mut line[..];
            let written = write!(cursor, "Date: {}\r\n", httpdate::HttpDate::from(now));
            if written.is_ok() && cursor.is_empty() {
                c.line = line;
                c.second = second;
            }
        }
        out.extend_from_slice(&c.line);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_line_is_well_formed() {
        let mut out = bytes::BytesMut::new();
        super::append_date_line(&mut out);
        assert_eq!(out.len(), super::LINE_LEN);
        assert!(out.starts_with(b"Date: "));
        assert!(out.ends_with(b" GMT\r\n"));
    }
}
