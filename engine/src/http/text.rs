//! Field-value text helpers shared by every layer above (RFC 9110 §5.6):
//! optional whitespace, comma-separated lists (plain and with quoted
//! strings), and field-name comparison.

/// `s` without optional whitespace (SP and HTAB) at either end.
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The members of a comma-separated list, trimmed, empty ones skipped
/// (§5.6.1: recipients accept empty members).
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|m| !m.is_empty())
}

/// Does a comma-separated list contain `token` (case-insensitive)?
pub(crate) fn list_contains(value: &[u8], token: &[u8]) -> bool {
    list(value).any(|m| m.eq_ignore_ascii_case(token))
}

/// Like [`list`], for lists whose members may hold quoted strings
/// (Cache-Control directives, entity tags): a comma inside quotes does not
/// split.
pub(crate) fn quoted_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let item = trim(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or(&[]);
        if !item.is_empty() {
            return Some(item);
        }
    })
}

/// Writes `bytes` as lowercase hex digits into `out`, which holds exactly
/// two per byte (the form of W3C trace ids and of generated request IDs).
pub(crate) fn hex_lower(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    debug_assert_eq!(out.len(), bytes.len() * 2);
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Field names equal ignoring case and `_` against `-`: CGI-style servers
/// (PHP, Rack, WSGI) read `X_Consumer` and `X-Consumer` as one variable, so
/// a client must not get either past a strip.
pub(crate) fn same_field(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| norm(x) == norm(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_optional_whitespace_only() {
        for (input, want) in [
            (&b"  a b \t"[..], &b"a b"[..]),
            (b"", b""),
            (b" \t ", b""),
            (b"x", b"x"),
        ] {
            assert_eq!(trim(input), want);
        }
    }

    #[test]
    fn lists() {
        let members: Vec<&[u8]> = list(b" a, ,b ,, c").collect();
        assert_eq!(members, [&b"a"[..], b"b", b"c"]);
        assert!(list_contains(b"keep-alive, Upgrade", b"upgrade"));
        assert!(!list_contains(b"keep-alive", b"close"));
        let quoted: Vec<&[u8]> = quoted_list(br#"a="x,y", b, , "c""#).collect();
        assert_eq!(quoted, [&br#"a="x,y""#[..], b"b", br#""c""#]);
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        let mut out = [0u8; 8];
        hex_lower(&[0x00, 0x0f, 0xa0, 0xff], &mut out);
        assert_eq!(&out, b"000fa0ff");
    }

    #[test]
    fn field_names_match_across_spellings() {
        assert!(same_field(b"X_Consumer", b"x-consumer"));
        assert!(!same_field(b"x-consumer", b"x-consumers"));
    }
}
