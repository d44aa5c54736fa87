//! Request IDs and W3C Trace Context, seen from the client, the upstream
//! and the log stage: every request has one X-Request-Id, the same
//! upstream, on its answer (whoever wrote it) and in its log record; a
//! client's is kept only on a listener that trusts it; a valid traceparent
//! is continued with the gateway's own span and its tracestate passed on,
//! anything else starts a new trace.

mod support;

use std::collections::HashSet;
use support::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// Every value of field `name` in a response.
fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The response's one X-Request-Id.
fn id_of(r: &Response) -> String {
    let ids = values(&r.headers, "x-request-id");
    assert_eq!(
        ids.len(),
        1,
        "one X-Request-Id on the answer: {:?}",
        r.headers
    );
    ids[0].to_owned()
}

/// The upstream's last request's one X-Request-Id (whatever its spelling).
fn upstream_id(up: &TestUpstream) -> String {
    let seen = up.last();
    let ids: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(k, _)| {
            k.eq_ignore_ascii_case("x-request-id") || k.eq_ignore_ascii_case("x_request_id")
        })
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "one X-Request-Id upstream: {:?}",
        seen.headers
    );
    ids[0].to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `traceparent` split into (version, trace id, parent id, flags), after
/// checking it is a valid version-00 value.
fn traceparent_parts(value: &str) -> (String, String, String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert_eq!(parts[0], "00", "{value}");
    assert!(hex(parts[1], 32) && parts[1] != "0".repeat(32), "{value}");
    assert!(hex(parts[2], 16) && parts[2] != "0".repeat(16), "{value}");
    assert!(hex(parts[3], 2), "{value}");
    (
        parts[0].into(),
        parts[1].into(),
        parts[2].into(),
        parts[3].into(),
    )
}

/// The upstream's last request's one traceparent, in parts.
fn upstream_trace(up: &TestUpstream) -> (String, String, String, String) {
    let seen = up.last();
    let sent = values(&seen.headers, "traceparent");
    assert_eq!(
        sent.len(),
        1,
        "one traceparent upstream: {:?}",
        seen.headers
    );
    traceparent_parts(sent[0])
}

fn get(c: &mut TestClient, path: &str, fields: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{fields}\r\n").as_bytes());
    c.read_response(false).expect("response")
}

fn proxy_config(upstream: std::net::SocketAddr, listener: &str) -> String {
    format!(
        "workers = 2\n{listener}\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{upstream}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"up\"\n"
    )
}

#[test]
fn generated_ids_reach_the_upstream_the_client_and_the_log_and_differ() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hi");
        let records = Records::default();
        let gw = TestGateway::start_with(&proxy_config(up.addr, ""), driver, records.hooks());
        let mut seen = HashSet::new();
        let mut n = 0;
        for _ in 0..2 {
            // Two connections, two requests each.
            let mut c = gw.client();
            for _ in 0..2 {
                let r = get(&mut c, "/x", "");
                assert_eq!(r.status, 200);
                let id = id_of(&r);
                assert!(is_generated(&id), "{id}");
                assert_eq!(upstream_id(&up), id, "upstream and client see one ID");
                n += 1;
                let logged = records.nth(n);
                assert_eq!(logged.request_id, id, "the log stage sees it too");
                assert!(seen.insert(id), "every request gets its own ID");
            }
        }
        // One process: one prefix.
        let prefixes: HashSet<&str> = seen.iter().map(|id| &id[..16]).collect();
        assert_eq!(prefixes.len(), 1, "{seen:?}");
    }
}

#[test]
fn an_untrusting_listener_replaces_a_client_id() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hi");
        let gw = TestGateway::start(&proxy_config(up.addr, ""), driver);
        let mut c = gw.client();
        for fields in [
            "X-Request-Id: chosen-by-client\r\n",
            "x-request-id: chosen-by-client\r\nX-Request-Id: twice\r\n",
            // CGI-style origins read X_Request_Id as the same variable.
            "X_Request_Id: chosen-by-client\r\n",
        ] {
            let r = get(&mut c, "/x", fields);
            let id = id_of(&r);
            assert!(is_generated(&id), "{fields:?}: {id}");
            assert_eq!(upstream_id(&up), id, "{fields:?}");
        }
    }
}

#[test]
fn a_trusting_listener_keeps_a_valid_client_id_and_replaces_others() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hi");
        let listener = "[[listeners]]\naddress = \"127.0.0.1:0\"\ntrust-request-id = true\n";
        let gw = TestGateway::start(&proxy_config(up.addr, listener), driver);
        let mut c = gw.client();
        let longest = "i".repeat(128);
        for kept in [
            "abc-123",
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            longest.as_str(),
        ] {
            let r = get(&mut c, "/x", &format!("X-Request-Id: {kept}\r\n"));
            assert_eq!(id_of(&r), kept);
            assert_eq!(upstream_id(&up), kept);
        }
        let too_long = "i".repeat(129);
        for fields in [
            "X-Request-Id: has space\r\n".to_owned(),
            "X-Request-Id: a,b\r\n".to_owned(),
            format!("X-Request-Id: {too_long}\r\n"),
            "X-Request-Id: one\r\nX-Request-Id: two\r\n".to_owned(),
            String::new(),
        ] {
            let r = get(&mut c, "/x", &fields);
            let id = id_of(&r);
            assert!(is_generated(&id), "{fields:?}: {id}");
            assert_eq!(upstream_id(&up), id, "{fields:?}");
        }
    }
}

#[test]
fn refusals_errors_and_built_in_answers_carry_the_request_id() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hi");
        let toml = format!(
            "workers = 1\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[consumers]]\nname = \"alice\"\napi-keys = [\"sha256:{}\"]\n\
             [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\n\
             [[routes]]\nname = \"hello\"\npath = \"/hello\"\n[routes.respond]\nbody = \"hi\"\n\
             [[routes]]\nname = \"private\"\npath = \"/private\"\nupstream = \"up\"\nauth = [\"keys\"]\n\
             [[routes]]\nname = \"limited\"\npath = \"/limited\"\nupstream = \"up\"\n\
             [[routes.rate-limits]]\nkey = \"route\"\nrate = \"1/h\"\n",
            up.addr,
            "0".repeat(64),
        );
        let records = Records::default();
        let gw = TestGateway::start_with(&toml, driver, records.hooks());
        let mut c = gw.client();
        let mut n = 0;
        for (path, status) in [
            ("/nowhere", 404),
            ("/hello", 200),
            ("/private", 401),
            ("/limited", 200),
            ("/limited", 429),
        ] {
            let r = get(&mut c, path, "X-Request-Id: not-trusted\r\n");
            assert_eq!(r.status, status, "{path}");
            let id = id_of(&r);
            assert!(is_generated(&id), "{path}: {id}");
            n += 1;
            assert_eq!(records.nth(n).request_id, id, "{path}");
        }
        // A head that cannot be read still gets an ID on its 400.
        let mut c = gw.client();
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 400);
        let id = id_of(&r);
        assert!(is_generated(&id), "{id}");
        n += 1;
        assert_eq!(records.nth(n).request_id, id);
    }
}

#[test]
fn a_valid_traceparent_is_continued_with_a_new_span_and_its_tracestate_passed() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hi");
        let records = Records::default();
        let gw = TestGateway::start_with(&proxy_config(up.addr, ""), driver, records.hooks());
        let mut c = gw.client();
        let mut n = 0;
        for (flags, state) in [("01", Some(STATE)), ("00", None)] {
            let state_line = state.map_or_else(String::new, |s| format!("tracestate: {s}\r\n"));
            let fields = format!("traceparent: 00-{TRACE}-{PARENT}-{flags}\r\n{state_line}");
            let r = get(&mut c, "/x", &fields);
            assert_eq!(r.status, 200);
            let (_, trace_id, span_id, sent_flags) = upstream_trace(&up);
            assert_eq!(trace_id, TRACE, "the client's trace goes on");
            assert_ne!(span_id, PARENT, "the gateway's hop is a span of its own");
            assert_eq!(sent_flags, flags, "the sampling decision is the client's");
            let seen = up.last();
            let states = values(&seen.headers, "tracestate");
            assert_eq!(
                states,
                state.into_iter().collect::<Vec<_>>(),
                "tracestate unchanged"
            );
            n += 1;
            let logged = records.nth(n);
            assert_eq!(logged.trace_id, TRACE);
            assert_eq!(logged.span_id, span_id);
            assert_eq!(logged.request_id, id_of(&r));
        }
        // A later version is read by the 00 layout and sent on as 00.
        let fields =
            format!("TraceParent: cc-{TRACE}-{PARENT}-01-future\r\ntracestate: {STATE}\r\n");
        get(&mut c, "/x", &fields);
        let (version, trace_id, _, flags) = upstream_trace(&up);
        assert_eq!(
            (version.as_str(), trace_id.as_str(), flags.as_str()),
            ("00", TRACE, "01")
        );
        assert_eq!(values(&up.last().headers, "tracestate"), [STATE]);
    }
}

#[test]
fn an_invalid_or_missing_traceparent_starts_a_new_trace_without_tracestate() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hi");
        let records = Records::default();
        let gw = TestGateway::start_with(&proxy_config(up.addr, ""), driver, records.hooks());
        let mut c = gw.client();
        let upper = TRACE.to_uppercase();
        let zeros = "0".repeat(32);
        let mut traces = HashSet::new();
        let mut n = 0;
        for fields in [
            String::new(),
            format!("tracestate: {STATE}\r\n"),
            format!("traceparent: 00-{upper}-{PARENT}-01\r\ntracestate: {STATE}\r\n"),
            format!("traceparent: 00-{zeros}-{PARENT}-01\r\ntracestate: {STATE}\r\n"),
            format!("traceparent: ff-{TRACE}-{PARENT}-01\r\ntracestate: {STATE}\r\n"),
            format!("traceparent: 00-{TRACE}-{PARENT}-01-extra\r\ntracestate: {STATE}\r\n"),
            format!(
                "traceparent: 00-{TRACE}-{PARENT}-01\r\ntraceparent: 00-{TRACE}-{PARENT}-01\r\n\
                 tracestate: {STATE}\r\n"
            ),
        ] {
            let r = get(&mut c, "/x", &fields);
            assert_eq!(r.status, 200, "{fields:?}");
            let (_, trace_id, _, flags) = upstream_trace(&up);
            assert_ne!(trace_id, TRACE, "{fields:?}: a new trace");
            assert_eq!(flags, "01", "{fields:?}: a trace started here is sampled");
            assert!(
                !up.last().has("tracestate"),
                "{fields:?}: tracestate dropped"
            );
            n += 1;
            assert_eq!(records.nth(n).trace_id, trace_id, "{fields:?}");
            assert!(
                traces.insert(trace_id),
                "{fields:?}: each new trace its own id"
            );
        }
    }
}

#[test]
fn the_cache_sends_ids_upstream_and_answers_hits_with_their_own() {
    for driver in DRIVERS {
        // An origin that echoes the request's ID, as many frameworks do.
        let up = TestUpstream::start(|s| {
            let id = s.header("x-request-id").unwrap_or("none");
            Reply::Raw(
                format!(
                    "HTTP/1.1 200 OK\r\nX-Request-Id: {id}\r\nCache-Control: max-age=60\r\n\
                     Content-Length: 6\r\n\r\ncached"
                )
                .into_bytes(),
            )
        });
        let toml = format!(
            "workers = 1\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n",
            up.addr
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        let fields = format!("traceparent: 00-{TRACE}-{PARENT}-01\r\ntracestate: {STATE}\r\n");
        let miss = get(&mut c, "/c", &fields);
        assert_eq!(miss.text(), "cached");
        let miss_id = id_of(&miss);
        assert!(is_generated(&miss_id));
        assert_eq!(
            upstream_id(&up),
            miss_id,
            "the cache's fetch carries the ID"
        );
        let (_, trace_id, span_id, _) = upstream_trace(&up);
        assert_eq!(trace_id, TRACE);
        assert_ne!(span_id, PARENT);
        assert_eq!(values(&up.last().headers, "tracestate"), [STATE]);

        let hit = get(&mut c, "/c", "");
        assert_eq!(hit.text(), "cached");
        assert_eq!(up.request_count(), 1, "answered from the cache");
        let hit_id = id_of(&hit);
        assert!(is_generated(&hit_id));
        assert_ne!(hit_id, miss_id, "a hit is its own request");
    }
}
