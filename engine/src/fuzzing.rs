//! The invariants the fuzz targets in `fuzz/` check, one function per
//! target, each taking the fuzzer's raw bytes.
//!
//! The parsers are `pub(crate)`; this facade keeps them so and lets the
//! targets stay one line each. It is compiled only with the `fuzzing`
//! feature (the fuzz crate turns it on) and in the library's own tests,
//! which run the committed seed corpus through it, so normal builds do not
//! change and the checks cannot rot between fuzz runs.
//!
//! Every function asserts more than "does not panic": a parse must not
//! depend on how the bytes were split across reads (a peer chooses the
//! split), and what the gateway writes must parse back to what it meant
//! (decode(encode(x)) = x, parse(serialize(x)) = x). The first input byte
//! picks limits and splits, so one input explores both.

use std::ops::Range;

use bytes::BytesMut;
use ringway_config::{Config, ContentCoding, EncodedSlashes, UnderscoresInHeaders};

use crate::ai::{anthropic, gemini, openai, sse, stream::Events, stream::Translator};
use crate::cache::conditional::{not_modified, Preconditions, Validators};
use crate::cache::directives::{RequestDirectives, ResponseDirectives, DELTA_MAX};
use crate::error::{Error, Kind};
use crate::http::chunked::{write_chunk_header, ChunkError, ChunkedDecoder};
use crate::http::coding::negotiate;
use crate::http::head::{HeadLimits, Header, RequestHead, ResponseHead};
use crate::http::parse::{parse_request, parse_response};
use crate::http::target;
use crate::http::text::{list, list_contains, quoted_list, trim};

/// Piece lengths (each at least 1) from a seed: a peer's reads, short and
/// long mixed.
fn pieces(seed: u8, len: usize) -> Vec<Range<usize>> {
    // xorshift32: never 0 from a non-zero start.
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let step = match state % 4 {
            0 => 1,
            1 => 2 + (state >> 8) as usize % 7,
            2 => 1 + (state >> 8) as usize % 64,
            _ => 1 + (state >> 8) as usize % 1024,
        };
        let end = (at + step).min(len);
        out.push(at..end);
        at = end;
    }
    out
}

/// Name and value pairs (field lines, or SSE events' names and data).
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One read of all of `len` bytes.
fn at_once(len: usize) -> Vec<Range<usize>> {
    std::iter::once(0..len).collect()
}

/// An outcome to compare: the error's kind and context, or what was read.
fn error_of(e: &Error) -> String {
    format!("{:?}: {}", e.kind, e.context)
}

/// What a request head means to the gateway, comparable across parses.
#[derive(Debug, PartialEq)]
struct RequestMeaning {
    method: Vec<u8>,
    target: Vec<u8>,
    path: Vec<u8>,
    origin: Vec<u8>,
    authority: Vec<u8>,
    http10: bool,
    fields: Pairs,
    body: String,
    keep_alive: bool,
    expect_continue: bool,
}

fn request_meaning(head: &RequestHead) -> RequestMeaning {
    RequestMeaning {
        method: head.bytes(head.method_span).to_vec(),
        target: head.bytes(head.target).to_vec(),
        path: head.path().to_vec(),
        origin: head.origin().to_vec(),
        authority: head.authority().to_vec(),
        http10: head.version == crate::http::head::Version::Http10,
        fields: fields(&head.buf, &head.headers),
        body: format!("{:?}", head.body),
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
    }
}

fn fields(buf: &[u8], headers: &[Header]) -> Pairs {
    headers
        .iter()
        .map(|h| (h.name.get(buf).to_vec(), h.value.get(buf).to_vec()))
        .collect()
}

fn write_fields(out: &mut Vec<u8>, fields: &[(Vec<u8>, Vec<u8>)]) {
    for (name, value) in fields {
        out.extend_from_slice(name);
        out.push(b':');
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses `input` as the connection loop does: `parse` again after each
/// read until it answers; returns the answer and the bytes left.
fn parse_in_reads<T>(
    input: &[u8],
    reads: &[Range<usize>],
    mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, Error>,
) -> (Result<Option<T>, Error>, usize) {
    let mut buf = BytesMut::new();
    let mut last = Ok(None);
    for r in reads {
        buf.extend_from_slice(&input[r.clone()]);
        last = parse(&mut buf);
        if !matches!(last, Ok(None)) {
            break;
        }
    }
    (last, buf.len())
}

/// Request heads: the same answer whatever the reads, and a parsed head
/// written back out parses to the same meaning.
pub fn request_head(data: &[u8]) {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let limits = HeadLimits {
        max_head: if knobs & 0x10 != 0 { 256 } else { 64 << 10 },
        max_headers: if knobs & 0x20 != 0 { 4 } else { 100 },
        max_target: if knobs & 0x40 != 0 { 48 } else { 8 << 10 },
        slashes: match knobs % 3 {
            0 => EncodedSlashes::Pass,
            1 => EncodedSlashes::Reject,
            _ => EncodedSlashes::Decode,
        },
        underscores: if knobs & 0x80 != 0 {
            UnderscoresInHeaders::Pass
        } else {
            UnderscoresInHeaders::Drop
        },
    };
    let mut spans = Vec::new();
    let parse = |buf: &mut BytesMut| parse_request(buf, limits, &mut Vec::new());
    let whole = parse_request(&mut BytesMut::from(input), limits, &mut spans);
    let (split, _) = parse_in_reads(input, &pieces(knobs, input.len()), parse);
    let meaning = match (&whole, &split) {
        (Ok(Some(a)), Ok(Some(b))) => {
            let m = request_meaning(a);
            assert_eq!(m, request_meaning(b), "a split changed the head");
            m
        }
        (Ok(None), Ok(None)) => return,
        (Err(a), Err(b)) => {
            // A limit is checked on what has arrived, so a split can meet
            // it before the byte that makes the whole head malformed.
            let limit = |e: &Error| matches!(e.kind, Kind::HeadTooLarge | Kind::TargetTooLong);
            if !limit(a) && !limit(b) {
                assert_eq!(error_of(a), error_of(b), "a split changed the error");
            }
            return;
        }
        (a, b) => panic!("whole: {a:?}\nsplit: {b:?}"),
    };
    let mut again = Vec::with_capacity(input.len());
    again.extend_from_slice(&meaning.method);
    again.push(b' ');
    again.extend_from_slice(&meaning.target);
    again.extend_from_slice(if meaning.http10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    write_fields(&mut again, &meaning.fields);
    // Written back with CRLF and without optional spaces, a head may be
    // longer than it came: the size limit is not what this checks.
    let roomy = HeadLimits {
        max_head: limits.max_head.max(again.len() + 1),
        ..limits
    };
    match parse_request(&mut BytesMut::from(&again[..]), roomy, &mut spans) {
        Ok(Some(head)) => assert_eq!(request_meaning(&head), meaning, "written back"),
        other => panic!(
            "written back: {other:?}\n{:?}",
            String::from_utf8_lossy(&again)
        ),
    }
}

#[derive(Debug, PartialEq)]
struct ResponseMeaning {
    version: Vec<u8>,
    status: u16,
    reason: Vec<u8>,
    fields: Pairs,
    body: String,
    reusable: bool,
    retry_after: bool,
}

fn response_meaning(head: &ResponseHead) -> ResponseMeaning {
    ResponseMeaning {
        // httparse skips empty lines before the status line.
        version: {
            let start = head.buf.iter().position(|&b| b != b'\r' && b != b'\n');
            let line = &head.buf[start.unwrap_or(0)..];
            line.get(..8).unwrap_or_default().to_vec()
        },
        status: head.status,
        reason: head.bytes(head.reason).to_vec(),
        fields: fields(&head.buf, &head.headers),
        body: format!("{:?}", head.body),
        reusable: head.reusable,
        // Seconds only: a date compares against the clock.
        retry_after: head
            .value(b"retry-after")
            .is_some_and(|v| trim(v).iter().all(u8::is_ascii_digit))
            && head.retry_after().is_some(),
    }
}

/// Response heads: as [`request_head`], for what upstreams send.
pub fn response_head(data: &[u8]) {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let max_head = if knobs & 0x10 != 0 { 256 } else { 64 << 10 };
    let head_request = knobs & 0x20 != 0;
    let mut spans = Vec::new();
    let parse = |buf: &mut BytesMut| parse_response(buf, max_head, head_request, &mut Vec::new());
    let whole = parse_response(
        &mut BytesMut::from(input),
        max_head,
        head_request,
        &mut spans,
    );
    let (split, _) = parse_in_reads(input, &pieces(knobs, input.len()), parse);
    let meaning = match (&whole, &split) {
        (Ok(Some(a)), Ok(Some(b))) => {
            let m = response_meaning(a);
            assert_eq!(m, response_meaning(b), "a split changed the head");
            m
        }
        (Ok(None), Ok(None)) => return,
        (Err(a), Err(b)) => {
            // As for requests: the head's size limit is checked on what
            // has arrived, possibly before a malformed byte past it.
            let limit = |e: &Error| e.context == "upstream response head too large";
            if !limit(a) && !limit(b) {
                assert_eq!(error_of(a), error_of(b), "a split changed the error");
            }
            return;
        }
        (a, b) => panic!("whole: {a:?}\nsplit: {b:?}"),
    };
    let mut again = meaning.version.clone();
    again.extend_from_slice(format!(" {:03} ", meaning.status).as_bytes());
    again.extend_from_slice(&meaning.reason);
    again.extend_from_slice(b"\r\n");
    write_fields(&mut again, &meaning.fields);
    // As for requests: written back, a head may be longer than it came.
    match parse_response(
        &mut BytesMut::from(&again[..]),
        max_head.max(again.len() + 1),
        head_request,
        &mut spans,
    ) {
        Ok(Some(head)) => assert_eq!(response_meaning(&head), meaning, "written back"),
        other => panic!(
            "written back: {other:?}\n{:?}",
            String::from_utf8_lossy(&again)
        ),
    }
}

/// What a chunked decode saw: the payload, the body's length (or the
/// error), whether it ended, and the payload count it kept.
#[derive(Debug, PartialEq)]
struct Decoded {
    payload: Vec<u8>,
    outcome: Result<(usize, bool), ChunkError>,
    total: u64,
}

fn decode_in_reads(input: &[u8], reads: &[Range<usize>]) -> Decoded {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut consumed = 0;
    let mut outcome = Ok((0, false));
    for r in reads {
        let piece = &input[r.clone()];
        match decoder.decode(piece, |run| payload.extend_from_slice(&piece[run])) {
            Ok(p) => {
                consumed += p.consumed;
                outcome = Ok((consumed, p.done));
                if p.done {
                    assert_eq!(decoder.is_done(), p.done);
                    break;
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    Decoded {
        payload,
        outcome,
        total: decoder.data_total(),
    }
}

/// The chunked decoder: any bytes in any reads decode as they do whole,
/// and what the gateway frames (payload cut into chunks of any size, then
/// the last chunk) decodes to the payload, ending exactly at its end.
pub fn chunked(data: &[u8]) {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let whole = decode_in_reads(input, &at_once(input.len()));
    assert_eq!(whole, decode_in_reads(input, &pieces(knobs, input.len())));
    if let Ok((consumed, _)) = whole.outcome {
        assert!(consumed <= input.len());
    }
    assert!(whole.payload.len() as u64 <= whole.total || whole.outcome.is_err());

    let mut framed = BytesMut::new();
    for run in pieces(knobs.rotate_left(3), input.len()) {
        write_chunk_header(&mut framed, run.len());
        framed.extend_from_slice(&input[run]);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(b"0\r\n\r\n");
    let body_len = framed.len();
    // What follows the body on the connection is not read.
    framed.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let back = decode_in_reads(&framed, &pieces(knobs, framed.len()));
    assert_eq!(back.payload, input, "decode(encode(x))");
    assert_eq!(back.outcome, Ok((body_len, true)));
    assert_eq!(back.total, input.len() as u64);
}

/// Header-value parsers, one per first byte: Cache-Control, comma lists,
/// HTTP-dates, request targets, Accept-Encoding and If-None-Match.
pub fn header_values(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => cache_control(input),
        1 => lists(input),
        2 => dates(input),
        3 => targets(which, input),
        4 => accept_encoding(input),
        _ => if_none_match(input),
    }
}

/// Field lines: one value per line, as a head holds them.
fn lines(input: &[u8]) -> Vec<&[u8]> {
    input.split(|&b| b == b'\n').collect()
}

/// Cache-Control: bounded values, and several field lines mean what they
/// mean joined with commas (RFC 9110 §5.3) when no quoted string spans one.
fn cache_control(input: &[u8]) {
    let values = lines(input);
    let req = RequestDirectives::parse(values.iter().copied());
    let res = ResponseDirectives::parse(values.iter().copied());
    for v in [req.max_age, req.max_stale, req.min_fresh] {
        assert!(v.is_none_or(|v| v <= DELTA_MAX));
    }
    for v in [
        res.max_age,
        res.s_maxage,
        res.stale_while_revalidate,
        res.stale_if_error,
    ] {
        assert!(v.is_none_or(|v| v <= DELTA_MAX));
    }
    if !input.contains(&b'"') {
        let joined = values.join(&b","[..]);
        assert_eq!(req, RequestDirectives::parse([&joined[..]]), "joined");
        assert_eq!(res, ResponseDirectives::parse([&joined[..]]), "joined");
    }
}

/// Comma lists: members are trimmed, not empty, found by `list_contains`;
/// without quotes the quoted-string reading agrees.
fn lists(input: &[u8]) {
    let members: Vec<&[u8]> = list(input).collect();
    for m in &members {
        assert!(
            !m.is_empty() && trim(m) == *m && !m.contains(&b','),
            "{m:?}"
        );
        assert!(list_contains(input, m));
    }
    let quoted: Vec<&[u8]> = quoted_list(input).collect();
    for m in &quoted {
        assert!(!m.is_empty() && trim(m) == *m, "{m:?}");
    }
    if !input.contains(&b'"') {
        assert_eq!(members, quoted);
    }
}

/// HTTP-dates: any bytes parse or not without panic, a parsed date
/// written back reads the same, and so does any time the gateway writes.
fn dates(input: &[u8]) {
    use std::time::{Duration, UNIX_EPOCH};
    let write = |secs: u64| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
    if let Some(secs) = crate::cache::entry::http_date(input) {
        assert_eq!(
            crate::cache::entry::http_date(write(secs).as_bytes()),
            Some(secs)
        );
    }
    let mut raw = [0u8; 8];
    let n = input.len().min(8);
    raw[..n].copy_from_slice(&input[..n]);
    // httpdate writes years up to 9999.
    let secs = u64::from_le_bytes(raw) % 253_402_300_800;
    assert_eq!(
        crate::cache::entry::http_date(write(secs).as_bytes()),
        Some(secs)
    );
}

/// Request targets: a decoded path is itself an acceptable path, and an
/// accepted one is never ambiguous.
fn targets(which: u8, input: &[u8]) {
    let (path, query) = match input.iter().position(|&b| b == b'?') {
        Some(q) => (&input[..q], Some(&input[q + 1..])),
        None => (input, None),
    };
    let slashes = match (which / 6) % 3 {
        0 => EncodedSlashes::Pass,
        1 => EncodedSlashes::Reject,
        _ => EncodedSlashes::Decode,
    };
    let _ = target::strip_scheme(input);
    let _ = target::valid_authority(input);
    match target::check(path, query, slashes) {
        Ok(Some(decoded)) => {
            let routed = &decoded.origin[..decoded.path_len];
            assert!(!target::ambiguous_path(routed));
            assert!(matches!(
                target::check(routed, None, EncodedSlashes::Pass),
                Ok(None)
            ));
            assert_eq!(decoded.origin.get(decoded.path_len + 1..), query);
        }
        Ok(None) => assert!(path == b"*" || !target::ambiguous_path(path)),
        Err(_) => {}
    }
}

/// Accept-Encoding: the choice is one of those offered.
fn accept_encoding(input: &[u8]) {
    let offered = [
        ContentCoding::Zstd,
        ContentCoding::Brotli,
        ContentCoding::Gzip,
    ];
    for n in 0..=offered.len() {
        if let Some(c) = negotiate(lines(input).into_iter(), &offered[..n]) {
            assert!(offered[..n].contains(&c));
        }
    }
}

/// If-None-Match: any list, and one that also names the stored tag (in
/// its weak form) matches it.
fn if_none_match(input: &[u8]) {
    let stored = Validators {
        etag: Some(b"\"v1\""),
        last_modified: Some(1),
    };
    let pre = |list| Preconditions {
        if_none_match: Some(list),
        if_modified_since: None,
    };
    let _ = not_modified(&pre(input), &stored);
    if !input.contains(&b'"') {
        let mut named = input.to_vec();
        named.extend_from_slice(b", W/\"v1\"");
        assert!(not_modified(&pre(&named), &stored));
    }
}

/// Config files: loading never panics, and a config that validates
/// renders to TOML and JSON that read back as one config, whose own
/// rendering is the same text (warnings such as a plain API key are not
/// written, so the first load may differ from the second by those).
pub fn config(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml_str(src) else {
        return;
    };
    let toml = config.to_toml();
    let json = config.to_json(false);
    let from_toml = Config::from_toml_str(&toml)
        .unwrap_or_else(|e| panic!("rendered TOML does not read back: {e}\n{toml}"));
    let from_json = Config::from_json_str(&json)
        .unwrap_or_else(|e| panic!("rendered JSON does not read back: {e}\n{json}"));
    assert_eq!(from_toml, from_json, "TOML and JSON disagree");
    assert_eq!(from_toml.to_toml(), toml, "rendering is not a fixed point");
    let plain_key = config
        .consumers
        .iter()
        .any(|c| c.api_keys.iter().any(|k| k.plain));
    if !plain_key {
        assert_eq!(from_toml, config, "render, parse: not the same config");
    }
    let _ = config.to_json(true);
}

/// Events as the SSE parser delivers them, fed in `reads`.
fn sse_events(input: &[u8], reads: &[Range<usize>]) -> (Pairs, bool) {
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    let mut push = |e: sse::Event<'_>| events.push((e.name.to_vec(), e.data.to_vec()));
    for r in reads {
        if parser.feed(&input[r.clone()], &mut push).is_err() {
            return (events, false);
        }
    }
    parser.finish(&mut push);
    (events, true)
}

/// The AI stream translators a response can get, as the handler builds
/// them (`proxy/ai`).
fn translators(include_usage: bool) -> [Translator; 4] {
    let front = |inner| {
        Translator::Messages(Box::new((
            inner,
            anthropic::FromOpenAi::new("claude-x"),
            BytesMut::new(),
        )))
    };
    [
        Translator::Pass(openai::PassStream::new(include_usage)),
        Translator::Anthropic(anthropic::ToOpenAi::new(include_usage, 7)),
        Translator::Gemini(gemini::ToOpenAi::new("gemini-x", include_usage, 7)),
        front(Translator::Gemini(gemini::ToOpenAi::new(
            "gemini-x", true, 7,
        ))),
    ]
}

/// The SSE parser and every stream translator: the same events and the
/// same client bytes (UTF-8) whatever the provider's reads.
pub fn ai_stream(data: &[u8]) {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let reads = pieces(knobs, input.len());
    let whole = at_once(input.len());
    let whole = &whole[..];
    assert_eq!(sse_events(input, whole), sse_events(input, &reads));
    let include_usage = knobs & 1 != 0;
    let utf8_in = std::str::from_utf8(input).is_ok();
    let front_of_anthropic = || {
        Translator::Messages(Box::new((
            Translator::Anthropic(anthropic::ToOpenAi::new(true, 7)),
            anthropic::FromOpenAi::new("claude-x"),
            BytesMut::new(),
        )))
    };
    let run = |mut t: Translator, reads: &[Range<usize>]| {
        let mut out = BytesMut::new();
        for r in reads {
            t.feed(&input[r.clone()], &mut out);
        }
        t.finish(&mut out);
        // A provider's UTF-8 stays UTF-8. (The OpenAI pass-through relays
        // event data as it came, valid or not, as a proxy relays a body.)
        assert!(
            !utf8_in || std::str::from_utf8(&out).is_ok(),
            "translators write UTF-8"
        );
        (out, t.usage(), t.started())
    };
    let a = translators(include_usage);
    let b = translators(include_usage);
    for (a, b) in a.into_iter().zip(b) {
        assert_eq!(run(a, whole), run(b, &reads), "a split changed the stream");
    }
    assert_eq!(
        run(front_of_anthropic(), whole),
        run(front_of_anthropic(), &reads)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target's check.
    type Check = fn(&[u8]);

    /// Every seed of every target, run through its checks.
    #[test]
    fn the_seed_corpus_keeps_its_invariants() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let targets: [(&str, Check); 6] = [
            ("request_head", request_head),
            ("response_head", response_head),
            ("chunked", chunked),
            ("header_values", header_values),
            ("config", config),
            ("ai_stream", ai_stream),
        ];
        for (name, check) in targets {
            let dir = corpus.join(name);
            let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
            let mut seen = 0;
            for entry in entries {
                let path = entry.expect("dir entry").path();
                let data = std::fs::read(&path).expect("read seed");
                check(&data);
                seen += 1;
            }
            assert!(seen > 0, "{name} has no seed");
        }
    }

    #[test]
    fn pieces_cover_the_input_in_order() {
        for seed in 0..=255 {
            let p = pieces(seed, 3000);
            assert_eq!(p.first().map(|r| r.start), Some(0));
            assert_eq!(p.last().map(|r| r.end), Some(3000));
            assert!(p.windows(2).all(|w| w[0].end == w[1].start));
            assert!(p.iter().all(|r| !r.is_empty()));
        }
    }
}
