//! Header rules, the rewritten target and the values with variables: what
//! a route (and its listener, first) changes in the request sent upstream
//! and in every answer it gives.
//!
//! Rules work on a head already written (the request head for upstream,
//! or an answer's head at the response stage, whatever wrote it): one pass
//! copies its field lines into a per-worker scratch buffer, leaving out,
//! renaming or replacing fields, appends the added ones, and copies the
//! result back. That is one copy of a few hundred bytes, only on routes
//! with rules, and it lets one function serve proxied, cached, built-in
//! and error answers alike. Order per rule set, as Kong's: remove, rename,
//! set, add-if-absent, add; the listener's set runs before the route's.
//!
//! A rewritten path is normalised where it is written (RFC 3986 §5.2.4
//! dot-segments removed, empty segments collapsed), so no rule can send
//! `..` or `//` upstream, whatever the captures held.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use regex::{CaptureLocations, Regex};
use ringway_config::{HeaderRules, Part, PathRewrite, RouteTransform, Template, Var};

use crate::http::head::{RequestHead, Span};
use crate::http::text::same_field;
use crate::proxy::ctx::Ctx;
use crate::snapshot::Snapshot;
use crate::worker::conn::TlsInfo;

/// What a route's values may need of its request once the head is gone
/// (at the response stage): kept only on routes with rules.
pub(crate) struct ReqView {
    /// The request head's bytes (a reference count, not a copy).
    pub(crate) buf: Bytes,
    /// Where `$host` is in it.
    pub(crate) host: Option<Span>,
    /// `$client_ip`.
    pub(crate) client: IpAddr,
    /// The listener's index in the config, when it is still there.
    pub(crate) listener: Option<usize>,
}

impl ReqView {
    pub(crate) fn of(head: &RequestHead, client: IpAddr, listener: Option<usize>) -> ReqView {
        ReqView {
            buf: head.buf.clone(),
            host: head.target_authority.or(head.host),
            client,
            listener,
        }
    }
}

/// The index in the config of the listener configured as `configured`.
pub(crate) fn listener_index(snap: &Snapshot, configured: SocketAddr) -> Option<usize> {
    snap.config
        .listeners
        .iter()
        .position(|l| l.address == configured)
}

/// The listener's and the route's rules for one side of a request
/// (`request`: what is sent upstream).
pub(crate) fn rules_of<'a>(
    snap: &'a Snapshot,
    ctx: &Ctx,
    request: bool,
) -> [Option<&'a HeaderRules>; 2] {
    let listener = ctx
        .req
        .as_ref()
        .and_then(|r| snap.config.listeners.get(r.listener?));
    let route = ctx.route.map(|i| &snap.route_config(i).transform);
    if request {
        [
            listener.and_then(|l| l.request_headers.as_ref()),
            route.and_then(|t| t.request_headers.as_ref()),
        ]
    } else {
        [
            listener.and_then(|l| l.response_headers.as_ref()),
            route.and_then(|t| t.response_headers.as_ref()),
        ]
    }
}

/// Where variables take their values from.
#[derive(Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub(crate) snap: &'a Snapshot,
    pub(crate) ctx: &'a Ctx,
    pub(crate) tls: Option<&'a TlsInfo>,
    /// `$upstream_server`.
    pub(crate) server: Option<SocketAddr>,
    /// `$1`…`$9`: the rewrite regex's captures, over this path.
    pub(crate) captures: Option<(&'a [u8], &'a CaptureLocations)>,
    /// `$path` and `$query` (with its `?`) of a redirect.
    pub(crate) target: Option<(&'a [u8], &'a [u8])>,
}

impl Vars<'_> {
    /// Writes `t`'s value. `encode`: percent-encode what variables give
    /// (a query value).
    pub(crate) fn render(&self, t: &Template, out: &mut BytesMut, encode: bool) {
        for part in &t.parts {
            match part {
                Part::Text(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(v) if encode => VALUE.with(|value| {
                    let mut value = value.borrow_mut();
                    value.clear();
                    self.var(v, &mut value);
                    percent_encode(&value, out);
                }),
                Part::Var(v) => self.var(v, out),
            }
        }
    }

    fn var(&self, v: &Var, out: &mut BytesMut) {
        let ctx = self.ctx;
        let req = ctx.req.as_ref();
        match v {
            Var::ClientIp => match req.map(|r| r.client) {
                Some(IpAddr::V4(ip)) => {
                    let mut num = itoa::Buffer::new();
                    for (i, octet) in ip.octets().into_iter().enumerate() {
                        if i > 0 {
                            out.extend_from_slice(b".");
                        }
                        out.extend_from_slice(num.format(octet).as_bytes());
                    }
                }
                Some(ip) => {
                    let _ = write!(out, "{ip}");
                }
                None => {}
            },
            Var::Consumer => {
                if let Some(c) = ctx.consumer {
                    out.extend_from_slice(self.snap.policies.consumers[c].as_bytes());
                }
            }
            Var::Route => {
                if let Some(i) = ctx.route {
                    out.extend_from_slice(self.snap.route_config(i).name.as_bytes());
                }
            }
            Var::RequestId => out.extend_from_slice(ctx.request_id.as_bytes()),
            Var::TraceId => out.extend_from_slice(&ctx.trace.trace_id_hex()),
            Var::Host => {
                if let Some((r, h)) = req.and_then(|r| Some((r, r.host?))) {
                    out.extend_from_slice(h.get(&r.buf));
                }
            }
            Var::Scheme => out.extend_from_slice(if self.tls.is_some() {
                b"https"
            } else {
                b"http"
            }),
            Var::TlsSni => {
                if let Some(sni) = self.tls.and_then(|t| t.sni.as_deref()) {
                    out.extend_from_slice(sni.as_bytes());
                }
            }
            Var::UpstreamServer => {
                if let Some(s) = self.server {
                    let _ = write!(out, "{s}");
                }
            }
            Var::Status => {
                out.extend_from_slice(itoa::Buffer::new().format(ctx.status).as_bytes());
            }
            Var::Path => {
                if let Some((path, _)) = self.target {
                    out.extend_from_slice(path);
                }
            }
            Var::Query => {
                if let Some((_, query)) = self.target {
                    out.extend_from_slice(query);
                }
            }
            Var::Header(name) => {
                if let Some(value) = req.and_then(|r| raw_field(&r.buf, name.as_bytes())) {
                    out.extend_from_slice(value);
                }
            }
            Var::Capture(d) => {
                if let Some((hay, locs)) = self.captures {
                    if let Some((s, e)) = locs.get(usize::from(*d)) {
                        out.extend_from_slice(&hay[s..e]);
                    }
                }
            }
        }
    }
}

/// Whether field lines (no first line) hold a field `name`.
fn has_field(lines: &[u8], name: &[u8]) -> bool {
    lines
        .split(|&b| b == b'\n')
        .filter_map(|l| Some(&l[..memchr::memchr(b':', l)?]))
        .any(|n| same_field(n, name))
}

/// The first value of field `name` in a raw head (request line first).
fn raw_field<'b>(head: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    fields(head).find_map(|(n, v, _)| same_field(n, name).then(|| v.trim_ascii()))
}

/// The field lines of a head in `buf` (status or request line first),
/// as (name, the value with its surrounding whitespace, the whole line
/// with its CRLF), up to the blank line.
fn fields(buf: &[u8]) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> {
    let mut at = memchr::memchr(b'\n', buf).map_or(buf.len(), |i| i + 1);
    std::iter::from_fn(move || loop {
        let rest = &buf[at..];
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        at += end;
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.is_empty() {
            return None;
        }
        if let Some(colon) = memchr::memchr(b':', bare) {
            return Some((&bare[..colon], &bare[colon + 1..], line));
        }
    })
}

thread_local! {
    /// Each worker's scratch for a variable's value before it is
    /// percent-encoded.
    static VALUE: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

thread_local! {
    /// Each worker's scratch for rewriting heads: grows to the largest
    /// head once, then is reused.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Applies each set of `rules` in turn (the listener's, then the
/// route's) to the head in `out[start..]` (its first line, then field
/// lines ending in CRLF; no blank line yet).
pub(crate) fn apply(
    rules: [Option<&HeaderRules>; 2],
    out: &mut BytesMut,
    start: usize,
    vars: &Vars<'_>,
) {
    let first = memchr::memchr(b'\n', &out[start..]).map_or(out.len(), |i| start + i + 1);
    apply_fields(rules, out, first, first, vars);
}

/// Applies `rules` to the field lines in `out[from..]`, the head's
/// fields starting at `fields` (for `add-if-absent`, which looks at all).
pub(crate) fn apply_fields(
    rules: [Option<&HeaderRules>; 2],
    out: &mut BytesMut,
    fields: usize,
    from: usize,
    vars: &Vars<'_>,
) {
    SCRATCH.with(|s| {
        let mut scratch = s.borrow_mut();
        for r in rules.into_iter().flatten() {
            scratch.clear();
            let (before, region) = out[fields..].split_at(from - fields);
            apply_one(r, region, before, &mut scratch, vars);
            out.truncate(from);
            out.extend_from_slice(&scratch);
        }
    });
}

/// What `rules` (the listener's, then the route's) do to a field named
/// `name` written upstream: `None` drops it, else the name to write.
pub(crate) fn fate<'n>(rules: [Option<&'n HeaderRules>; 2], name: &'n [u8]) -> Option<&'n [u8]> {
    let mut name = name;
    for r in rules.into_iter().flatten() {
        if removes(r, name) {
            return None;
        }
        if let Some((_, to)) = r
            .rename
            .iter()
            .find(|(from, _)| same_field(name, from.as_bytes()))
        {
            name = to.as_bytes();
        }
        if r.set.iter().any(|(n, _)| same_field(name, n.as_bytes())) {
            return None;
        }
    }
    Some(name)
}

/// Rewrites the field lines in `head` (no first line) into `out` by
/// `rules`; `before`: the head's field lines ahead of them.
fn apply_one(rules: &HeaderRules, head: &[u8], before: &[u8], out: &mut BytesMut, vars: &Vars<'_>) {
    // The first letters of the names the rules touch: most lines start
    // with none of them, and runs of such lines are copied at once
    // without a look at the rules.
    let mut touched = Letters::default();
    for r in &rules.remove {
        touched.add(r.as_bytes());
    }
    for (n, _) in &rules.rename {
        touched.add(n.as_bytes());
    }
    for (n, _) in &rules.set {
        touched.add(n.as_bytes());
    }
    let mut at = 0;
    // Bytes from `run` to `at` are kept as they are, not yet copied.
    let mut run = 0;
    while at < head.len() {
        let end = memchr::memchr(b'\n', &head[at..]).map_or(head.len(), |i| at + i + 1);
        let line = &head[at..end];
        let colon = if touched.has(line) {
            memchr::memchr(b':', line)
        } else {
            None
        };
        if let Some(colon) = colon {
            let name = &line[..colon];
            let renamed = rules
                .rename
                .iter()
                .find(|(from, _)| same_field(name, from.as_bytes()))
                .map(|(_, to)| to.as_bytes());
            let dropped = removes(rules, name)
                || rules
                    .set
                    .iter()
                    .any(|(n, _)| same_field(renamed.unwrap_or(name), n.as_bytes()));
            if dropped || renamed.is_some() {
                out.extend_from_slice(&head[run..at]);
                run = end;
            }
            if let (Some(to), false) = (renamed, dropped) {
                let value = &line[colon + 1..];
                put(out, to, |o| o.extend_from_slice(value.trim_ascii()));
            }
        }
        at = end;
    }
    out.extend_from_slice(&head[run..at]);
    for (name, value) in &rules.set {
        put(out, name.as_bytes(), |o| vars.render(value, o, false));
    }
    for (name, value) in &rules.add_if_absent {
        let name_b = name.as_bytes();
        if !has_field(before, name_b) && !has_field(out, name_b) {
            put(out, name.as_bytes(), |o| vars.render(value, o, false));
        }
    }
    for (name, value) in &rules.add {
        put(out, name.as_bytes(), |o| vars.render(value, o, false));
    }
}

/// A set of first letters of field names (ASCII, case and `_`/`-` folded
/// as [`same_field`] does).
#[derive(Default)]
struct Letters(u128);

impl Letters {
    fn fold(b: u8) -> u32 {
        u32::from(
            if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            } & 0x7f,
        )
    }

    fn add(&mut self, name: &[u8]) {
        if let Some(&b) = name.first() {
            self.0 |= 1 << Self::fold(b);
        }
    }

    fn has(&self, name: &[u8]) -> bool {
        name.first()
            .is_some_and(|&b| self.0 & (1 << Self::fold(b)) != 0)
    }
}

fn put(out: &mut BytesMut, name: &[u8], value: impl FnOnce(&mut BytesMut)) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    value(out);
    out.extend_from_slice(b"\r\n");
}

fn removes(rules: &HeaderRules, name: &[u8]) -> bool {
    rules.remove.iter().any(|r| match r.strip_suffix('*') {
        Some(prefix) => {
            name.len() >= prefix.len() && same_field(&name[..prefix.len()], prefix.as_bytes())
        }
        None => same_field(name, r.as_bytes()),
    })
}

thread_local! {
    /// Each worker's capture slots per rewrite regex, by (generation,
    /// route): made once per regex, then reused.
    static LOCS: RefCell<(u64, Vec<(usize, CaptureLocations)>)> =
        const { RefCell::new((0, Vec::new())) };
}

/// Writes the target sent upstream (origin-form) for `route`: its path
/// rewritten and normalised, its query with parameters removed and added.
/// `strip_params`: parameters a policy removes (credentials).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_target(
    out: &mut BytesMut,
    origin: &[u8],
    path_len: usize,
    prefix_len: usize,
    t: &RouteTransform,
    regex: Option<&Regex>,
    strip_params: &[String],
    vars: &Vars<'_>,
) {
    let (path, query) = origin.split_at(path_len.min(origin.len()));
    let query = query.strip_prefix(b"?").unwrap_or(query);
    let start = out.len();
    match (&t.path, regex) {
        (Some(PathRewrite::StripPrefix), _) => {
            out.extend_from_slice(b"/");
            out.extend_from_slice(&path[prefix_len.min(path.len())..]);
        }
        (Some(PathRewrite::Prefix(p)), _) => {
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(b"/");
            out.extend_from_slice(&path[prefix_len.min(path.len())..]);
        }
        (Some(PathRewrite::Regex { replace, .. }), Some(re)) => {
            rewrite_regex(out, path, vars, re, replace)
        }
        _ => out.extend_from_slice(path),
    }
    if t.path.is_some() {
        let len = normalize(&mut out[start..]);
        out.truncate(start + len);
        if len == 0 {
            out.extend_from_slice(b"/");
        }
    }
    let removed = |name: &[u8]| {
        strip_params
            .iter()
            .chain(t.query.iter().flat_map(|q| &q.remove))
            .any(|p| p.as_bytes() == name)
    };
    let mut first = true;
    for param in query.split(|&b| b == b'&') {
        let name = param.split(|&b| b == b'=').next().unwrap_or(param);
        if param.is_empty() || removed(name) {
            continue;
        }
        out.extend_from_slice(if first { b"?" } else { b"&" });
        out.extend_from_slice(param);
        first = false;
    }
    for (name, value) in t.query.iter().flat_map(|q| &q.add) {
        out.extend_from_slice(if first { b"?" } else { b"&" });
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=");
        vars.render(value, out, true);
        first = false;
    }
}

/// A path the regex matches is replaced; others are written as they are.
fn rewrite_regex(out: &mut BytesMut, path: &[u8], vars: &Vars<'_>, re: &Regex, replace: &Template) {
    with_captures(vars, Some(re), path, |captures| match captures {
        Some(_) => {
            let with = Vars {
                captures,
                target: None,
                ..*vars
            };
            with.render(replace, out, false);
        }
        None => out.extend_from_slice(path),
    });
}

/// Runs `f` with the captures of `re` over `path` (`None` when there is
/// no regex or it does not match), in this worker's reused slots.
fn with_captures<R>(
    vars: &Vars<'_>,
    re: Option<&Regex>,
    path: &[u8],
    f: impl FnOnce(Option<(&[u8], &CaptureLocations)>) -> R,
) -> R {
    let (Some(re), Ok(text)) = (re, std::str::from_utf8(path)) else {
        return f(None);
    };
    let key = vars.ctx.route.unwrap_or(usize::MAX);
    LOCS.with(|l| {
        let mut l = l.borrow_mut();
        let generation = vars.snap.generation;
        if l.0 != generation {
            *l = (generation, Vec::new());
        }
        let at = match l.1.iter().position(|(r, _)| *r == key) {
            Some(at) => at,
            None => {
                l.1.push((key, re.capture_locations()));
                l.1.len() - 1
            }
        };
        let locs = &mut l.1[at].1;
        match re.captures_read(locs, text) {
            Some(_) => f(Some((path, &*locs))),
            None => f(None),
        }
    })
}

/// Writes a redirect's `location`: `$path` and `$query` as the route's
/// rewrite and query rules make them, `$1`… from its `rewrite` regex.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_location(
    out: &mut BytesMut,
    location: &Template,
    origin: &[u8],
    path_len: usize,
    prefix_len: usize,
    t: &RouteTransform,
    regex: Option<&Regex>,
    vars: &Vars<'_>,
) {
    SCRATCH.with(|s| {
        let mut target = s.borrow_mut();
        target.clear();
        write_target(
            &mut target,
            origin,
            path_len,
            prefix_len,
            t,
            regex,
            &[],
            vars,
        );
        let q = target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len());
        let (path, query) = target.split_at(q);
        let original = &origin[..path_len.min(origin.len())];
        with_captures(vars, regex, original, |captures| {
            let with = Vars {
                captures,
                target: Some((path, query)),
                ..*vars
            };
            with.render(location, out, false);
        });
    });
}

/// Normalises the path in `buf` in place (dot-segments removed, empty
/// segments collapsed, a leading `/` kept); returns its new length.
fn normalize(buf: &mut [u8]) -> usize {
    let n = buf.len();
    if n == 0 {
        return 0;
    }
    // A path that ends in `/` (or in a dot-segment) keeps a final slash.
    let ends_dir = buf_ends_dir(buf);
    let mut w = 0;
    let mut r = 0;
    while r < n {
        // One segment from r, after its slash (or the start).
        while r < n && buf[r] == b'/' {
            r += 1;
        }
        let s = r;
        while r < n && buf[r] != b'/' {
            r += 1;
        }
        let seg_len = r - s;
        if seg_len == 0 {
            break;
        }
        let dots = dot_segment(&buf[s..r]);
        match dots {
            1 => {}
            2 => {
                // Back to the slash before the last written segment.
                while w > 0 && buf[w - 1] != b'/' {
                    w -= 1;
                }
                w = w.saturating_sub(1);
            }
            _ => {
                buf[w] = b'/';
                w += 1;
                buf.copy_within(s..r, w);
                w += seg_len;
            }
        }
    }
    if w == 0 || (ends_dir && buf[w - 1] != b'/') {
        buf[w] = b'/';
        w += 1;
    }
    w
}

fn buf_ends_dir(path: &[u8]) -> bool {
    if path.ends_with(b"/") {
        return true;
    }
    let last = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    dot_segment(last) > 0
}

/// 1 for `.`, 2 for `..` (also percent-encoded), else 0.
fn dot_segment(seg: &[u8]) -> u8 {
    let mut dots = 0;
    let mut i = 0;
    while i < seg.len() {
        if seg[i] == b'.' {
            i += 1;
        } else if seg.len() >= i + 3
            && seg[i] == b'%'
            && seg[i + 1] == b'2'
            && seg[i + 2] | 0x20 == b'e'
        {
            i += 3;
        } else {
            return 0;
        }
        dots += 1;
        if dots > 2 {
            return 0;
        }
    }
    dots
}

/// Percent-encodes all but RFC 3986 unreserved characters.
fn percent_encode(value: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.extend_from_slice(&[b]);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_removes_dot_segments_and_empty_segments() {
        let table: &[(&str, &str)] = &[
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("//a", "/a"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../b", "/b"),
            ("/a/b/..", "/a/"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/", "/a/"),
            ("/", "/"),
            ("/v2//users", "/v2/users"),
            ("/a/...", "/a/..."),
        ];
        for (input, want) in table {
            let mut buf = input.as_bytes().to_vec();
            let n = normalize(&mut buf);
            assert_eq!(
                std::str::from_utf8(&buf[..n]).expect("utf8"),
                *want,
                "{input}"
            );
        }
    }

    #[test]
    fn lines_and_raw_field_read_a_head() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Id:  7 \r\n\r\nbody";
        assert_eq!(raw_field(head, b"x-id"), Some(&b"7"[..]));
        assert_eq!(raw_field(head, b"host"), Some(&b"a"[..]));
        assert_eq!(raw_field(head, b"body"), None);
    }
}
