//! Content codings (RFC 9110 §8.4, §12.5.3): choosing one from a
//! request's `Accept-Encoding`, and the streaming encoders for gzip
//! (RFC 1952), brotli (RFC 7932) and zstd (RFC 8878).
//!
//! The encoders are built for a body that arrives in pieces and must not
//! be held back: [`Encoder::push`] compresses a piece and flushes it (a
//! sync flush in deflate, a brotli flush, a zstd block end), so what went
//! in is decodable by the client as soon as it arrives, whether more
//! comes in a millisecond or a minute. The cost is a few bytes per piece
//! and a little ratio when pieces are small; pieces are socket reads, so
//! on a bulk body they are tens of KiB. Each encoder's state (deflate's
//! window and tables, about 256 KiB at the default memory level; brotli's
//! and zstd's, which grow with the level) lives for one response.

use std::io::Write;

use bytes::BytesMut;
use ringway_config::ContentCoding;

use crate::http::text::{list, trim};

/// Brotli window: 2^19 = 512 KiB, ngx_brotli's default; larger windows
/// gain little on API bodies and cost memory per response.
const BROTLI_WINDOW_BITS: u32 = 19;
/// Brotli's input buffer.
const BROTLI_BUFFER: usize = 16 << 10;

/// Chooses the coding for a response from the request's `Accept-Encoding`
/// field values, among `offered` (in the server's order of preference,
/// which breaks ties between equal q-values). `None` means identity: no
/// field (we do not assume a client that says nothing decodes anything),
/// no offered coding acceptable (`q=0` refuses one, `*` stands for every
/// coding not named), or identity given a higher q-value than any.
pub(crate) fn negotiate<'a>(
    accept: impl Iterator<Item = &'a [u8]>,
    offered: &[ContentCoding],
) -> Option<ContentCoding> {
    // Weights in thousandths; `None` while not named.
    let mut named = [None::<u16>; 3];
    let mut star = None::<u16>;
    let mut identity = None::<u16>;
    let mut any = false;
    for value in accept {
        any = true;
        for member in list(value) {
            let mut parts = member.split(|&b| b == b';');
            let token = trim(parts.next().unwrap_or_default());
            let mut q = 1000;
            for param in parts {
                let param = trim(param);
                if let Some(w) = param
                    .strip_prefix(b"q=")
                    .or_else(|| param.strip_prefix(b"Q="))
                {
                    q = weight(w).unwrap_or(0);
                }
            }
            let slot = if token == b"*" {
                &mut star
            } else if token.eq_ignore_ascii_case(b"identity") {
                &mut identity
            } else if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
                &mut named[0]
            } else if token.eq_ignore_ascii_case(b"br") {
                &mut named[1]
            } else if token.eq_ignore_ascii_case(b"zstd") {
                &mut named[2]
            } else {
                continue;
            };
            // Named twice: the higher weight (a lenient reading).
            *slot = Some(slot.map_or(q, |old: u16| old.max(q)));
        }
    }
    if !any {
        return None;
    }
    let slot = |c: ContentCoding| match c {
        ContentCoding::Gzip => 0,
        ContentCoding::Brotli => 1,
        ContentCoding::Zstd => 2,
    };
    let mut best: Option<(ContentCoding, u16)> = None;
    for &c in offered {
        let q = named[slot(c)].or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((c, q));
        }
    }
    let (coding, q) = best?;
    // Identity competes only when the client weighed it, by name or by
    // `*` (§12.5.3: acceptable by default, not preferred by default); a
    // tie goes to the coding.
    match identity.or(star) {
        Some(identity) if identity > q => None,
        _ => Some(coding),
    }
}

/// A q-value (RFC 9110 §12.4.2) in thousandths; `None` when malformed.
fn weight(w: &[u8]) -> Option<u16> {
    match w {
        [b'0'] | [b'0', b'.'] => Some(0),
        [b'1'] | [b'1', b'.'] => Some(1000),
        [b'1', b'.', rest @ ..] if rest.len() <= 3 && rest.iter().all(|&b| b == b'0') => Some(1000),
        [b'0', b'.', rest @ ..] if rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit) => {
            let mut n = 0u16;
            for i in 0..3 {
                n = n * 10 + rest.get(i).map_or(0, |d| u16::from(d - b'0'));
            }
            Some(n)
        }
        _ => None,
    }
}

/// One response body's encoder.
pub enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// An encoder for `coding` at `level` (already validated for it);
    /// `None` if the library refuses to start (zstd's context allocation).
    pub fn new(coding: ContentCoding, level: u8) -> Option<Encoder> {
        Some(match coding {
            ContentCoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(u32::from(level)),
            )),
            ContentCoding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                u32::from(level),
                BROTLI_WINDOW_BITS,
            ))),
            ContentCoding::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), i32::from(level)).ok()?)
            }
        })
    }

    /// Compresses `data` and flushes, appending what is ready to `out`.
    /// Writing into memory cannot fail; a library error (a bug) ends the
    /// output, which the client then sees as a truncated stream.
    pub fn push(&mut self, data: &[u8], out: &mut BytesMut) {
        let done = match self {
            Encoder::Gzip(e) => e.write_all(data).and_then(|()| e.flush()),
            Encoder::Brotli(e) => e.write_all(data).and_then(|()| e.flush()),
            Encoder::Zstd(e) => e.write_all(data).and_then(|()| e.flush()),
        };
        if done.is_err() {
            tracing::debug!("compression failed mid-body");
        }
        let inner = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Brotli(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        out.extend_from_slice(inner);
        inner.clear();
    }

    /// Ends the stream (its trailer: gzip's CRC and length, brotli's and
    /// zstd's last block), appending it to `out`.
    pub fn finish(self, out: &mut BytesMut) {
        let rest = match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Brotli(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
        };
        match rest {
            Ok(rest) => out.extend_from_slice(&rest),
            Err(_) => tracing::debug!("compression failed at the end of a body"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use ContentCoding::{Brotli, Gzip, Zstd};

    fn pick(accept: &str, offered: &[ContentCoding]) -> Option<ContentCoding> {
        negotiate(std::iter::once(accept.as_bytes()), offered)
    }

    #[test]
    fn negotiates_by_q_value_then_server_preference() {
        let all = [Zstd, Brotli, Gzip];
        let cases: &[(&str, &[ContentCoding], Option<ContentCoding>)] = &[
            ("gzip", &all, Some(Gzip)),
            ("gzip, deflate, br, zstd", &all, Some(Zstd)),
            ("gzip, deflate, br, zstd", &[Gzip, Brotli], Some(Gzip)),
            ("gzip;q=0.5, br;q=0.8", &all, Some(Brotli)),
            ("gzip;q=1.0, br;q=0.999", &all, Some(Gzip)),
            ("GZIP;Q=0.3", &all, Some(Gzip)),
            ("x-gzip", &all, Some(Gzip)),
            ("gzip;q=0", &all, None),
            ("br;q=0, gzip", &[Brotli, Gzip], Some(Gzip)),
            ("*", &all, Some(Zstd)),
            ("*;q=0.5, zstd;q=0", &all, Some(Brotli)),
            ("*;q=0", &all, None),
            ("identity", &all, None),
            ("", &all, None),
            ("deflate, compress", &all, None),
            ("gzip;q=0.5, identity", &all, None),
            ("gzip;q=0.5, identity;q=0.5", &all, Some(Gzip)),
            ("gzip;q=0.1, *;q=0", &all, Some(Gzip)),
            ("gzip;q=2", &all, None),
            ("gzip;q=0.1234", &all, None),
            ("gzip;q=", &all, None),
            (" , gzip ;  q=0.7 ,", &all, Some(Gzip)),
        ];
        for &(accept, offered, want) in cases {
            assert_eq!(pick(accept, offered), want, "{accept:?} of {offered:?}");
        }
        assert_eq!(negotiate(std::iter::empty(), &all), None, "no field");
        let two = [b"br;q=0.2".as_slice(), b"gzip;q=0.4".as_slice()];
        assert_eq!(negotiate(two.into_iter(), &all), Some(Gzip), "two fields");
    }

    fn decode(coding: ContentCoding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Gzip => flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .map(|_| ()),
            Brotli => brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .map(|_| ()),
            Zstd => zstd::stream::read::Decoder::new(data)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map(|_| ()),
        }
        .expect("decodes");
        out
    }

    #[test]
    fn each_piece_is_decodable_when_pushed() {
        for coding in [Gzip, Brotli, Zstd] {
            let mut e = Encoder::new(coding, 3).expect("starts");
            let mut out = BytesMut::new();
            e.push(b"{\"event\":1}\n", &mut out);
            // What came out so far decodes to all that went in (a stream
            // decoder fed a prefix yields the prefix's data).
            let first = out.len();
            assert!(first > 0, "{coding}: flushed");
            e.push(&b"{\"event\":2}\n".repeat(1000), &mut out);
            e.finish(&mut out);
            let mut want = b"{\"event\":1}\n".to_vec();
            want.extend_from_slice(&b"{\"event\":2}\n".repeat(1000));
            assert_eq!(decode(coding, &out), want, "{coding}");
            assert!(out.len() < want.len() / 4, "{coding}: {} bytes", out.len());
        }
    }

    #[test]
    fn an_empty_body_is_a_valid_stream() {
        for coding in [Gzip, Brotli, Zstd] {
            let mut out = BytesMut::new();
            Encoder::new(coding, 1).expect("starts").finish(&mut out);
            assert_eq!(decode(coding, &out), b"", "{coding}");
        }
    }
}
