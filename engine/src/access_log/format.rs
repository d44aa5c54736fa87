//! A record → one log line: JSON (one object per line, every field named)
//! or the Apache/nginx combined format.
//!
//! Runs on the writer thread only, so it may take its time, but it still
//! writes straight into the output buffer (no `String` per field, no
//! `format!`): at 100k lines a second the formatting is the writer's whole
//! job. Text from the client is escaped so that a line can never be broken
//! or forged: in JSON, `"`, `\` and control bytes are escaped and bytes that
//! are not UTF-8 become U+FFFD (as `String::from_utf8_lossy` does), so every
//! line parses; in the combined format, `"`, `\`, control bytes and bytes
//! from 0x7F up become `\xHH`, as nginx's default escaping does. Text cut
//! at its bound ends in `...`.
//!
//! Times are UTC. The combined format's `$time_local` is therefore always
//! `+0000`: the gateway keeps no time zone, and logs from several machines
//! merge without conversion.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ringway_config::Config;

use crate::access_log::record::{Record, Text};

/// `,"name":`, one copy of a literal made at compile time.
macro_rules! key {
    ($out:expr, $name:literal) => {
        $out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes())
    };
}

/// The names one config generation gives the indexes a record holds:
/// what the writer keeps of each recent generation (a few KiB, where the
/// whole compiled snapshot would keep its certificates and tables alive).
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    listeners: Vec<(SocketAddr, String)>,
    routes: Vec<String>,
    upstreams: Vec<String>,
    consumers: Vec<String>,
    ai_models: Vec<String>,
    ai_providers: Vec<String>,
}

impl Catalog {
    pub(crate) fn of(c: &Config) -> Catalog {
        Catalog {
            listeners: c
                .listeners
                .iter()
                .map(|l| (l.address, l.name.clone()))
                .collect(),
            routes: c.routes.iter().map(|r| r.name.clone()).collect(),
            upstreams: c.upstreams.iter().map(|u| u.name.clone()).collect(),
            consumers: c.consumers.iter().map(|x| x.name.clone()).collect(),
            ai_models: c.ai_models.iter().map(|x| x.name.clone()).collect(),
            ai_providers: c.ai_providers.iter().map(|x| x.name.clone()).collect(),
        }
    }
}

/// The names a record refers to, as far as the writer knows them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Names<'a> {
    pub(crate) listener: Option<&'a str>,
    pub(crate) route: Option<&'a str>,
    pub(crate) upstream: Option<&'a str>,
    pub(crate) consumer: Option<&'a str>,
    pub(crate) ai_model: Option<&'a str>,
    pub(crate) ai_provider: Option<&'a str>,
}

impl<'a> Names<'a> {
    /// The names `r` refers to in `catalog`, that of the generation it ran
    /// on (`None` when that is no longer known: then only the indexes are,
    /// which would be wrong to resolve against another config).
    pub(crate) fn of(catalog: Option<&'a Catalog>, r: &Record) -> Names<'a> {
        let Some(c) = catalog else {
            return Names::default();
        };
        let name = |list: &'a [String], i: Option<u32>| {
            i.and_then(|i| list.get(i as usize)).map(String::as_str)
        };
        Names {
            listener: c
                .listeners
                .iter()
                .find(|(a, _)| *a == r.listener)
                .map(|(_, n)| n.as_str()),
            route: name(&c.routes, r.route),
            upstream: name(&c.upstreams, r.upstream),
            consumer: name(&c.consumers, r.consumer),
            ai_model: name(&c.ai_models, r.ai.map(|a| a.model)),
            ai_provider: name(&c.ai_providers, r.ai.and_then(|a| a.provider)),
        }
    }
}

/// Appends `r` as one JSON object and a newline.
pub(crate) fn json(r: &Record, names: &Names<'_>, out: &mut Vec<u8>) {
    // Enough for a typical line at once, so the appends below rarely grow.
    out.reserve(1024);
    let request = r.protocol.is_some();
    out.extend_from_slice(b"{\"time\":\"");
    rfc3339(out, r.time_ms);
    out.push(b'"');
    key!(out, "request_id");
    opt_text(out, &r.request_id, !r.request_id.get().is_empty());
    key!(out, "trace_id");
    match &r.trace_id {
        Some(hex) => json_str(out, hex, false),
        None => null(out),
    }
    key!(out, "client_ip");
    out.push(b'"');
    // An address holds no character JSON must escape.
    ip(out, r.client_ip);
    out.push(b'"');
    key!(out, "client_port");
    opt_u64(out, r.client_port.map(u64::from));
    key!(out, "listener");
    match names.listener {
        Some(name) => json_str(out, name.as_bytes(), false),
        None => address(out, r.listener),
    }
    key!(out, "tls_version");
    opt_str(out, r.tls_version);
    key!(out, "tls_sni");
    opt_text(out, &r.tls_sni, !r.tls_sni.get().is_empty());
    key!(out, "method");
    opt_text(out, &r.method, request);
    key!(out, "host");
    opt_text(out, &r.host, request && !r.host.get().is_empty());
    key!(out, "path");
    opt_text(out, &r.path, request);
    key!(out, "query");
    opt_text(out, &r.query, request && r.has_query);
    key!(out, "protocol");
    opt_str(out, r.protocol.map(|p| p.as_str()));
    key!(out, "status");
    opt_u64(out, (r.status != 0).then_some(u64::from(r.status)));
    key!(out, "bytes_in");
    number(out, r.bytes_in);
    key!(out, "bytes_out");
    number(out, r.bytes_out);
    key!(out, "duration");
    seconds(out, r.duration);
    key!(out, "upstream_connect");
    opt_seconds(out, r.upstream_connect);
    key!(out, "upstream_head");
    opt_seconds(out, r.upstream_head);
    key!(out, "first_byte");
    opt_seconds(out, r.first_byte);
    key!(out, "route");
    opt_str(out, names.route);
    key!(out, "upstream");
    opt_str(out, names.upstream);
    key!(out, "upstream_server");
    match r.upstream_server {
        Some(a) => address(out, a),
        None => null(out),
    }
    key!(out, "upstream_tries");
    opt_u64(
        out,
        (r.upstream_tries != 0).then_some(u64::from(r.upstream_tries)),
    );
    key!(out, "cache");
    opt_str(out, r.cache);
    key!(out, "consumer");
    opt_str(out, names.consumer);
    // Only AI routes' lines have these (the others keep their layout).
    if let Some(ai) = &r.ai {
        key!(out, "ai_model");
        opt_str(out, names.ai_model);
        key!(out, "ai_provider");
        opt_str(out, names.ai_provider);
        key!(out, "ai_tokens_in");
        number(out, ai.tokens_in);
        key!(out, "ai_tokens_out");
        number(out, ai.tokens_out);
        key!(out, "ai_tokens_cached");
        number(out, ai.tokens_cached);
        key!(out, "ai_ttft");
        opt_seconds(out, ai.ttft);
    }
    key!(out, "error_kind");
    opt_str(out, r.error.map(|(k, _)| k.as_str()));
    key!(out, "error_side");
    opt_str(out, r.error.map(|(_, s)| s.as_str()));
    key!(out, "user_agent");
    opt_text(out, &r.user_agent, !r.user_agent.get().is_empty());
    key!(out, "referer");
    opt_text(out, &r.referer, !r.referer.get().is_empty());
    out.extend_from_slice(b"}\n");
}

/// Appends `r` in the combined format and a newline:
/// `client - consumer [time] "METHOD target PROTOCOL" status bytes "referer" "user agent"`.
/// The size is every byte sent to the client, head included (nginx's
/// `$bytes_sent`, not `$body_bytes_sent`); a missing value is `-`.
pub(crate) fn combined(r: &Record, names: &Names<'_>, out: &mut Vec<u8>) {
    let _ = write!(out, "{} - ", r.client_ip);
    match names.consumer {
        Some(c) => clf_str(out, c.as_bytes(), false),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" [");
    clf_time(out, r.time_ms);
    out.extend_from_slice(b"] \"");
    match r.protocol {
        Some(p) => {
            clf_text(out, &r.method);
            out.push(b' ');
            clf_text(out, &r.path);
            if r.has_query {
                out.push(b'?');
                clf_text(out, &r.query);
            }
            out.push(b' ');
            out.extend_from_slice(p.as_str().as_bytes());
        }
        None => out.push(b'-'),
    }
    out.extend_from_slice(b"\" ");
    if r.status == 0 {
        out.push(b'-');
    } else {
        number(out, u64::from(r.status));
    }
    out.push(b' ');
    number(out, r.bytes_out);
    for t in [&r.referer, &r.user_agent] {
        out.extend_from_slice(b" \"");
        if t.get().is_empty() {
            out.push(b'-');
        } else {
            clf_text(out, t);
        }
        out.push(b'"');
    }
    out.push(b'\n');
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_u64(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => number(out, n),
        None => null(out),
    }
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s.as_bytes(), false),
        None => null(out),
    }
}

fn opt_text<const N: usize>(out: &mut Vec<u8>, t: &Text<N>, present: bool) {
    if present {
        json_str(out, t.get(), t.is_cut());
    } else {
        null(out);
    }
}

fn address(out: &mut Vec<u8>, a: SocketAddr) {
    out.push(b'"');
    match a {
        SocketAddr::V4(v4) => {
            ip(out, IpAddr::V4(*v4.ip()));
            out.push(b':');
            number(out, u64::from(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
    }
    out.push(b'"');
}

/// An IP address as `Display` writes it, IPv4 without the formatting
/// machinery (most lines hold two).
fn ip(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(octet));
            }
        }
        IpAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
    }
}

fn opt_seconds(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => seconds(out, d),
        None => null(out),
    }
}

/// Seconds with microseconds: `0.001234`.
fn seconds(out: &mut Vec<u8>, d: Duration) {
    number(out, d.as_secs());
    out.push(b'.');
    let micros = d.subsec_micros();
    let digits = itoa::Buffer::new().format(micros).len();
    out.extend(std::iter::repeat_n(b'0', 6 - digits));
    number(out, u64::from(micros));
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as a JSON string: `"`, `\` and control characters
/// escaped, invalid UTF-8 replaced by U+FFFD. `cut`: the value was cut at
/// its bound; an incomplete character left at the end by the cut is
/// dropped, and `...` marks the cut.
fn json_str(out: &mut Vec<u8>, bytes: &[u8], cut: bool) {
    out.push(b'"');
    // Most text is printable ASCII without `"` or `\\`: copied in one go.
    if !cut
        && bytes
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut chunks = bytes.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1f | 0x7f => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
        }
        // A character the cut split leaves an incomplete tail: dropped.
        let split_by_cut = cut && chunks.peek().is_none();
        if !chunk.invalid().is_empty() && !split_by_cut {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    if cut {
        out.extend_from_slice(b"...");
    }
    out.push(b'"');
}

/// Writes `bytes` as nginx's default escaping does: `"`, `\`, control
/// bytes and bytes from 0x7F up as `\xHH`.
fn clf_str(out: &mut Vec<u8>, bytes: &[u8], cut: bool) {
    for &b in bytes {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(b"\\x");
            out.push(HEX[usize::from(b >> 4)].to_ascii_uppercase());
            out.push(HEX[usize::from(b & 0xf)].to_ascii_uppercase());
        } else {
            out.push(b);
        }
    }
    if cut {
        out.extend_from_slice(b"...");
    }
}

fn clf_text<const N: usize>(out: &mut Vec<u8>, t: &Text<N>) {
    clf_str(out, t.get(), t.is_cut());
}

/// `2026-01-02T03:04:05.678Z`.
fn rfc3339(out: &mut Vec<u8>, ms: u64) {
    let (date, [h, m, s]) = civil_time(ms / 1000);
    let [y, mo, d] = date;
    number(out, y);
    out.push(b'-');
    two(out, mo);
    out.push(b'-');
    two(out, d);
    out.push(b'T');
    two(out, h);
    out.push(b':');
    two(out, m);
    out.push(b':');
    two(out, s);
    out.push(b'.');
    let ms = ms % 1000;
    out.push(b'0' + (ms / 100) as u8);
    two(out, ms % 100);
    out.push(b'Z');
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `02/Jan/2026:15:04:05 +0000`.
fn clf_time(out: &mut Vec<u8>, ms: u64) {
    let ([y, mo, d], [h, m, s]) = civil_time(ms / 1000);
    two(out, d);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(mo - 1) as usize]);
    out.push(b'/');
    number(out, y);
    out.push(b':');
    two(out, h);
    out.push(b':');
    two(out, m);
    out.push(b':');
    two(out, s);
    out.extend_from_slice(b" +0000");
}

fn two(out: &mut Vec<u8>, n: u64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Seconds since the Unix epoch → ([year, month, day], [hour, minute,
/// second]) in UTC, proleptic Gregorian (H. Hinnant's `civil_from_days`).
fn civil_time(secs: u64) -> ([u64; 3], [u64; 3]) {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Shifted so the year starts in March: leap days fall at its end.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    ([year, month, day], [rest / 3600, rest / 60 % 60, rest % 60])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::record::Protocol;
    use crate::error::{Kind, Side};
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    fn text(f: fn(&mut Vec<u8>, &[u8], bool), bytes: &[u8], cut: bool) -> String {
        let mut out = Vec::new();
        f(&mut out, bytes, cut);
        String::from_utf8(out).expect("escaped text is UTF-8")
    }

    #[test]
    fn json_strings_escape_what_json_must() {
        let cases: [(&[u8], bool, &str); 9] = [
            (b"plain /a?b=c", false, r#""plain /a?b=c""#),
            (b"q\"uote\\back", false, r#""q\"uote\\back""#),
            (
                b"\n\r\t\x00\x1f\x7f",
                false,
                r#""\n\r\t\u0000\u001f\u007f""#,
            ),
            ("é✓".as_bytes(), false, "\"é✓\""),
            (b"a\xffb", false, r#""a\ufffdb""#),
            (b"\xe2\x9c", false, r#""\ufffd""#),
            (b"abc", true, r#""abc...""#),
            // A character split by the cut is dropped, not replaced.
            (b"ab\xe2\x9c", true, r#""ab...""#),
            (b"\xff", true, r#""...""#),
        ];
        for (bytes, cut, want) in cases {
            assert_eq!(text(json_str, bytes, cut), want, "{bytes:?}");
        }
    }

    #[test]
    fn combined_strings_escape_as_nginx_does() {
        let cases: [(&[u8], bool, &str); 4] = [
            (b"Mozilla/5.0 (X11)", false, "Mozilla/5.0 (X11)"),
            (b"a\"b\\c", false, r"a\x22b\x5Cc"),
            ("\x01é\x7f".as_bytes(), false, r"\x01\xC3\xA9\x7F"),
            (b"abc", true, "abc..."),
        ];
        for (bytes, cut, want) in cases {
            assert_eq!(text(clf_str, bytes, cut), want, "{bytes:?}");
        }
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z", "01/Jan/1970:00:00:00 +0000"),
            (
                951_782_400_007,
                "2000-02-29T00:00:00.007Z",
                "29/Feb/2000:00:00:00 +0000",
            ),
            (
                1_767_225_599_999,
                "2025-12-31T23:59:59.999Z",
                "31/Dec/2025:23:59:59 +0000",
            ),
            (
                4_107_542_400_120,
                "2100-03-01T00:00:00.120Z",
                "01/Mar/2100:00:00:00 +0000",
            ),
        ];
        for (ms, iso, clf) in cases {
            let mut out = Vec::new();
            rfc3339(&mut out, ms);
            assert_eq!(out, iso.as_bytes(), "{ms}");
            out.clear();
            clf_time(&mut out, ms);
            assert_eq!(out, clf.as_bytes(), "{ms}");
        }
    }

    #[test]
    fn seconds_have_six_decimals() {
        let cases = [
            (Duration::ZERO, "0.000000"),
            (Duration::from_nanos(1_234_567), "0.001234"),
            (Duration::from_millis(61_500), "61.500000"),
        ];
        for (d, want) in cases {
            let mut out = Vec::new();
            seconds(&mut out, d);
            assert_eq!(out, want.as_bytes());
        }
    }

    fn full() -> Record {
        let mut r = Record::EMPTY;
        r.time_ms = 1_767_225_599_999;
        r.client_ip = "192.0.2.7".parse().expect("ip");
        r.client_port = Some(50_000);
        r.listener = "127.0.0.1:8080".parse().expect("addr");
        r.tls_version = Some("TLSv1.3");
        r.tls_sni.set(b"api.example.com");
        r.protocol = Some(Protocol::Http11);
        r.method.set(b"GET");
        r.host.set(b"api.example.com");
        r.path.set(b"/v1/items");
        r.has_query = true;
        r.query.set(b"a=1&b=\"2\"");
        r.status = 502;
        r.bytes_in = 78;
        r.bytes_out = 1234;
        r.duration = Duration::from_micros(2_500);
        r.upstream_connect = Some(Duration::from_micros(300));
        r.route = Some(0);
        r.upstream = Some(0);
        r.upstream_server = Some("10.0.0.1:3000".parse().expect("addr"));
        r.upstream_tries = 2;
        r.consumer = Some(0);
        r.error = Some((Kind::BadGateway, Side::Upstream));
        r.user_agent.set(b"curl/8.5.0");
        r
    }

    #[test]
    fn a_json_line_names_every_field() {
        let r = full();
        let names = Names {
            listener: Some("public"),
            route: Some("api"),
            upstream: Some("app"),
            consumer: Some("alice"),
            ..Names::default()
        };
        let mut out = Vec::new();
        json(&r, &names, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        let want = serde_json::json!({
            "time": "2025-12-31T23:59:59.999Z",
            "request_id": null,
            "trace_id": null,
            "client_ip": "192.0.2.7",
            "client_port": 50000,
            "listener": "public",
            "tls_version": "TLSv1.3",
            "tls_sni": "api.example.com",
            "method": "GET",
            "host": "api.example.com",
            "path": "/v1/items",
            "query": "a=1&b=\"2\"",
            "protocol": "HTTP/1.1",
            "status": 502,
            "bytes_in": 78,
            "bytes_out": 1234,
            "duration": 0.0025,
            "upstream_connect": 0.0003,
            "upstream_head": null,
            "first_byte": null,
            "route": "api",
            "upstream": "app",
            "upstream_server": "10.0.0.1:3000",
            "upstream_tries": 2,
            "cache": null,
            "consumer": "alice",
            "error_kind": "bad_gateway",
            "error_side": "upstream",
            "user_agent": "curl/8.5.0",
            "referer": null,
        });
        assert_eq!(v, want);
        // Fields keep the documented order.
        let text = String::from_utf8(out).expect("utf-8");
        let order = [
            "time",
            "request_id",
            "trace_id",
            "client_ip",
            "client_port",
            "listener",
            "tls_version",
            "tls_sni",
            "method",
            "host",
            "path",
            "query",
            "protocol",
            "status",
            "bytes_in",
            "bytes_out",
            "duration",
            "upstream_connect",
            "upstream_head",
            "first_byte",
            "route",
            "upstream",
            "upstream_server",
            "upstream_tries",
            "cache",
            "consumer",
            "error_kind",
            "error_side",
            "user_agent",
            "referer",
        ];
        assert_eq!(order.len(), want.as_object().expect("object").len());
        let at: Vec<usize> = order
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect("key"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn a_line_without_a_request_has_nulls_and_a_dash() {
        let mut r = Record::EMPTY;
        r.status = 400;
        r.client_ip = "::1".parse().expect("ip");
        r.listener = "[::1]:8080".parse().expect("addr");
        r.error = Some((Kind::BadRequest, Side::Downstream));
        let mut out = Vec::new();
        json(&r, &Names::default(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["method"], serde_json::Value::Null);
        assert_eq!(v["path"], serde_json::Value::Null);
        assert_eq!(v["protocol"], serde_json::Value::Null);
        assert_eq!(v["listener"], "[::1]:8080");
        assert_eq!(v["client_port"], serde_json::Value::Null);
        out.clear();
        combined(&r, &Names::default(), &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\"\n"
        );
    }

    #[test]
    fn a_combined_line_has_the_nginx_layout() {
        let mut r = full();
        r.referer.set(b"https://example.com/\"x\"");
        let names = Names {
            consumer: Some("alice"),
            ..Names::default()
        };
        let mut out = Vec::new();
        combined(&r, &names, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "192.0.2.7 - alice [31/Dec/2025:23:59:59 +0000] \
             \"GET /v1/items?a=1&b=\\x222\\x22 HTTP/1.1\" 502 1234 \
             \"https://example.com/\\x22x\\x22\" \"curl/8.5.0\"\n"
        );
    }

    proptest! {
        /// Whatever a client sends, a JSON line parses and gives back the
        /// text (as UTF-8 with replacements), and a combined line stays
        /// one line of printable ASCII.
        #[test]
        fn any_bytes_make_one_valid_line(
            path in prop::collection::vec(any::<u8>(), 0..1100),
            agent in prop::collection::vec(any::<u8>(), 0..300),
            ms in 0u64..32_503_680_000_000,
        ) {
            let mut r = full();
            r.time_ms = ms;
            r.path.set(&path);
            r.user_agent.set(&agent);
            let mut out = Vec::new();
            json(&r, &Names::default(), &mut out);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            let want = String::from_utf8_lossy(r.path.get());
            let got = v["path"].as_str().expect("a string");
            let got = got.strip_suffix("...").filter(|_| r.path.is_cut()).unwrap_or(got);
            if !r.path.is_cut() {
                prop_assert_eq!(got, want.as_ref());
            }
            let mut line = Vec::new();
            combined(&r, &Names::default(), &mut line);
            prop_assert!(line[..line.len() - 1].iter().all(|b| (0x20..0x7f).contains(b)));
            // The date agrees with another implementation's.
            let http = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms));
            let mut clf = Vec::new();
            clf_time(&mut clf, ms);
            let clf = String::from_utf8(clf).expect("ascii");
            // "Sun, 06 Nov 1994 08:49:37 GMT" vs "06/Nov/1994:08:49:37 +0000"
            prop_assert_eq!(&clf[..2], &http[5..7]);
            prop_assert_eq!(&clf[3..6], &http[8..11]);
            prop_assert_eq!(&clf[7..11], &http[12..16]);
            prop_assert_eq!(&clf[12..20], &http[17..25]);
        }
    }
}
