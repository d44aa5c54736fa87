//! A mock LLM provider on 127.0.0.1:0 that speaks the providers' wire
//! formats: it records every request (method, target, headers, body parsed
//! as JSON) and answers with what a handler closure returns, as a JSON body,
//! a server-sent-event stream written event by event as chunked transfer
//! coding, a stream held open until the test releases it, or a close.
//!
//! Why a separate mock from [`super::TestUpstream`]: the AI tests need to
//! assert on the *translated* request body (parsed JSON, not bytes), to pace
//! a stream so time-to-first-token and mid-stream failures can be observed,
//! and to see that the gateway cancelled an upstream stream when its client
//! went away (the held stream reports that its peer closed).
//!
//! Blocking std threads, one per connection, as `TestUpstream`. Every wait
//! is bounded: an idle keep-alive connection ends after [`IDLE`], a held
//! stream after [`HOLD_LIMIT`], every `wait_*` method panics after 20 s.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{read_request, wait_until};

/// How long a keep-alive connection may sit idle before the mock closes it.
pub const IDLE: Duration = Duration::from_secs(30);
/// The longest a held stream waits for release before the mock cuts it.
pub const HOLD_LIMIT: Duration = Duration::from_secs(20);
/// How often a held stream looks for its peer's close.
const POLL: Duration = Duration::from_millis(5);

/// A request as the provider saw it.
#[derive(Debug, Clone, Default)]
pub struct LlmRequest {
    /// Order of arrival over the mock's life, from 0.
    pub seq: usize,
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body bytes (first MiB).
    pub body: Vec<u8>,
    /// The body parsed as JSON; `Value::Null` when empty or not JSON.
    pub json: Value,
}

impl LlmRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order (repeated headers).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query string, without `?`; empty when none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    /// A field of the JSON body by JSON pointer (`/messages/0/role`).
    pub fn at(&self, pointer: &str) -> &Value {
        self.json.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// Whether the body asked for a stream (`"stream": true`), or the
    /// target is Gemini's streaming method.
    pub fn wants_stream(&self) -> bool {
        self.json.get("stream") == Some(&Value::Bool(true))
            || self.path().ends_with(":streamGenerateContent")
    }
}

/// What the provider answers.
#[derive(Debug, Clone)]
pub enum LlmReply {
    /// A whole body with Content-Length (`Content-Type: application/json`
    /// unless `headers` names one). Keeps the connection.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `Content-Type: text/event-stream`, chunked: one chunk per event,
    /// each written (and flushed) `gap` after the previous; then the last
    /// chunk. Keeps the connection.
    Sse {
        status: u16,
        headers: Vec<(String, String)>,
        events: Vec<Vec<u8>>,
        gap: Duration,
    },
    /// As `Sse`, but after `events` the stream is held open until
    /// [`LlmMock::release`] (then `after` is written and the stream ends
    /// cleanly), [`LlmMock::cut`] (the connection closes with no last
    /// chunk: an interrupted stream), the peer closes (counted in
    /// [`LlmMock::peer_closed`]) or [`HOLD_LIMIT`] passes (cut).
    SseHold {
        status: u16,
        headers: Vec<(String, String)>,
        events: Vec<Vec<u8>>,
        gap: Duration,
        after: Vec<Vec<u8>>,
    },
    /// Waits (at most [`HOLD_LIMIT`]; [`LlmMock::release`] ends the wait
    /// early), then answers as the inner reply: a provider slower than the
    /// gateway's timeout.
    Delayed(Duration, Box<LlmReply>),
    /// Closes the connection without answering.
    Close,
}

impl LlmReply {
    /// 200 with a JSON body.
    pub fn ok(body: impl AsRef<[u8]>) -> LlmReply {
        LlmReply::json(200, body)
    }

    /// A JSON body with a status.
    pub fn json(status: u16, body: impl AsRef<[u8]>) -> LlmReply {
        LlmReply::Json {
            status,
            headers: Vec::new(),
            body: body.as_ref().to_vec(),
        }
    }

    /// A JSON body with a status and extra headers (`retry-after`...).
    pub fn json_with(status: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> LlmReply {
        LlmReply::Json {
            status,
            headers: owned(headers),
            body: body.as_ref().to_vec(),
        }
    }

    /// 200, the events written back to back.
    pub fn sse(events: Vec<Vec<u8>>) -> LlmReply {
        LlmReply::sse_paced(events, Duration::ZERO)
    }

    /// 200, one event every `gap`.
    pub fn sse_paced(events: Vec<Vec<u8>>, gap: Duration) -> LlmReply {
        LlmReply::Sse {
            status: 200,
            headers: Vec::new(),
            events,
            gap,
        }
    }

    /// 200, `events`, then held; `after` follows a release.
    pub fn hold(events: Vec<Vec<u8>>, after: Vec<Vec<u8>>) -> LlmReply {
        LlmReply::SseHold {
            status: 200,
            headers: Vec::new(),
            events,
            gap: Duration::ZERO,
            after,
        }
    }

    /// The reply, after `wait`.
    pub fn delayed(wait: Duration, reply: LlmReply) -> LlmReply {
        LlmReply::Delayed(wait, Box::new(reply))
    }
}

fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

type Handler = dyn Fn(&LlmRequest) -> LlmReply + Send + Sync;

/// Counters and shared state of one mock.
#[derive(Default)]
struct State {
    requests: Mutex<Vec<LlmRequest>>,
    seq: AtomicUsize,
    connections: AtomicUsize,
    /// Connections that have ended, for any reason.
    closed: AtomicUsize,
    /// Streams currently held.
    holding: AtomicUsize,
    /// Held streams that ended because the peer closed.
    peer_closed: AtomicUsize,
    /// Held streams released (ended cleanly) or cut by the test, or cut
    /// at the hold limit.
    released: AtomicUsize,
    cut: AtomicUsize,
    expired: AtomicUsize,
    /// Streams whose write failed part-way (the peer went away while
    /// events were being written).
    write_failed: AtomicUsize,
    /// Bumped by `release`/`cut`: a held stream acts on a change.
    release_gen: AtomicUsize,
    cut_gen: AtomicUsize,
    stopped: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
}

/// The mock provider. Dropping it stops it (held streams are cut).
pub struct LlmMock {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl LlmMock {
    /// Starts a provider on 127.0.0.1:0 answering with `handler`.
    pub fn start(handler: impl Fn(&LlmRequest) -> LlmReply + Send + Sync + 'static) -> LlmMock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock provider");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let st = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if st.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    st.streams.lock().expect("lock").push(clone);
                }
                st.connections.fetch_add(1, Ordering::SeqCst);
                let (h, st) = (handler.clone(), st.clone());
                thread::spawn(move || {
                    serve(stream, &*h, &st);
                    st.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        LlmMock { addr, state }
    }

    /// Answers every request with 200 and this JSON body.
    pub fn always(body: &'static str) -> LlmMock {
        LlmMock::start(move |_| LlmReply::ok(body))
    }

    /// A provider of every wire at once, answering by the request's shape
    /// with the fixtures of [`super::llm_fixtures`]:
    ///
    /// | path ends with | tools | stream | answer |
    /// |---|---|---|---|
    /// | `/chat/completions` | no | no | `OPENAI_COMPLETION` |
    /// | `/chat/completions` | yes | no | `OPENAI_COMPLETION_TOOL_CALL` |
    /// | `/chat/completions` | no | yes | `openai_text_stream(include_usage)` |
    /// | `/chat/completions` | yes | yes | `openai_tool_stream(include_usage)` |
    /// | `/embeddings` | | | `OPENAI_EMBEDDINGS` |
    /// | `/messages` | no / yes | no | `ANTHROPIC_MESSAGE` / `_TOOL_USE` |
    /// | `/messages` | no / yes | yes | `anthropic_text_stream` / `anthropic_tool_stream` |
    /// | `:generateContent` | no / yes | | `GEMINI_RESPONSE` / `GEMINI_FUNCTION_CALL` |
    /// | `:streamGenerateContent` | no / yes | | `gemini_text_stream` / `gemini_function_call_stream` |
    ///
    /// `include_usage` is the request's `stream_options.include_usage`.
    /// Anything else: 404 with OpenAI's error envelope.
    pub fn fixtures() -> LlmMock {
        LlmMock::start(fixture_reply)
    }

    /// `host:port`, for an `[[upstreams]]` server.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`, for SDK base URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<LlmRequest> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn last(&self) -> LlmRequest {
        self.requests().pop().expect("the provider got a request")
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().expect("lock").len()
    }

    pub fn connection_count(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections that have ended (either side closed).
    pub fn closed_count(&self) -> usize {
        self.state.closed.load(Ordering::SeqCst)
    }

    /// Streams being held right now.
    pub fn holding(&self) -> usize {
        self.state.holding.load(Ordering::SeqCst)
    }

    /// Held streams that ended because the peer (the gateway) closed the
    /// connection: the upstream request was cancelled.
    pub fn peer_closed(&self) -> usize {
        self.state.peer_closed.load(Ordering::SeqCst)
    }

    /// Held streams that ended by [`LlmMock::release`].
    pub fn released(&self) -> usize {
        self.state.released.load(Ordering::SeqCst)
    }

    /// Held streams cut by [`LlmMock::cut`].
    pub fn cut_count(&self) -> usize {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Held streams cut because nobody released them within [`HOLD_LIMIT`].
    pub fn expired(&self) -> usize {
        self.state.expired.load(Ordering::SeqCst)
    }

    /// Streams whose events could not all be written (peer gone).
    pub fn write_failed(&self) -> usize {
        self.state.write_failed.load(Ordering::SeqCst)
    }

    /// Ends every stream held now: `after` is written, then the last chunk.
    /// Also ends the wait of every `Delayed` reply.
    pub fn release(&self) {
        self.state.release_gen.fetch_add(1, Ordering::SeqCst);
    }

    /// Closes every stream held now without its last chunk (an upstream
    /// that died mid-stream).
    pub fn cut(&self) {
        self.state.cut_gen.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until `n` streams are held (20 s at most).
    pub fn wait_holding(&self, n: usize) {
        wait_until(&format!("{n} held stream(s)"), || self.holding() >= n);
    }

    /// Waits until `n` held streams saw their peer close (20 s at most).
    pub fn wait_peer_closed(&self, n: usize) {
        wait_until(&format!("{n} held stream(s) closed by the peer"), || {
            self.peer_closed() >= n
        });
    }

    /// Waits until `n` requests arrived (20 s at most).
    pub fn wait_requests(&self, n: usize) {
        wait_until(&format!("{n} provider request(s)"), || {
            self.request_count() >= n
        });
    }

    /// Stops listening and cuts every connection: connecting is refused
    /// from now on.
    pub fn stop(&self) {
        if self.state.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.state.cut_gen.fetch_add(1, Ordering::SeqCst);
        // Wakes the accept loop, which sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
        wait_until("the mock provider's listener closed", || {
            TcpStream::connect(self.addr).is_err()
        });
        for s in self.state.streams.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for LlmMock {
    fn drop(&mut self) {
        // No waiting here: a panicking test must not hang in a destructor.
        if !self.state.stopped.swap(true, Ordering::SeqCst) {
            self.state.cut_gen.fetch_add(1, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
            for s in self.state.streams.lock().expect("lock").drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The answer of [`LlmMock::fixtures`].
pub fn fixture_reply(r: &LlmRequest) -> LlmReply {
    use super::llm_fixtures as fx;
    let tools = r.json.get("tools").is_some_and(|t| !t.is_null());
    let usage = r.at("/stream_options/include_usage") == &Value::Bool(true);
    let path = r.path();
    match (path, tools, r.wants_stream()) {
        (p, false, false) if p.ends_with("/chat/completions") => {
            LlmReply::ok(fx::OPENAI_COMPLETION)
        }
        (p, true, false) if p.ends_with("/chat/completions") => {
            LlmReply::ok(fx::OPENAI_COMPLETION_TOOL_CALL)
        }
        (p, false, true) if p.ends_with("/chat/completions") => {
            LlmReply::sse(fx::openai_text_stream(usage))
        }
        (p, true, true) if p.ends_with("/chat/completions") => {
            LlmReply::sse(fx::openai_tool_stream(usage))
        }
        (p, _, _) if p.ends_with("/embeddings") => LlmReply::ok(fx::OPENAI_EMBEDDINGS),
        (p, false, false) if p.ends_with("/messages") => LlmReply::ok(fx::ANTHROPIC_MESSAGE),
        (p, true, false) if p.ends_with("/messages") => {
            LlmReply::ok(fx::ANTHROPIC_MESSAGE_TOOL_USE)
        }
        (p, false, true) if p.ends_with("/messages") => LlmReply::sse(fx::anthropic_text_stream()),
        (p, true, true) if p.ends_with("/messages") => LlmReply::sse(fx::anthropic_tool_stream()),
        (p, false, _) if p.ends_with(":generateContent") => LlmReply::ok(fx::GEMINI_RESPONSE),
        (p, true, _) if p.ends_with(":generateContent") => LlmReply::ok(fx::GEMINI_FUNCTION_CALL),
        (p, false, _) if p.ends_with(":streamGenerateContent") => {
            LlmReply::sse(fx::gemini_text_stream())
        }
        (p, true, _) if p.ends_with(":streamGenerateContent") => {
            LlmReply::sse(fx::gemini_function_call_stream())
        }
        _ => LlmReply::json(
            404,
            format!(
                r#"{{"error":{{"message":"mock provider: no fixture for {} {}","type":"invalid_request_error","param":null,"code":"unknown_url"}}}}"#,
                r.method,
                path.replace('"', "'")
            ),
        ),
    }
}

fn serve(stream: TcpStream, handler: &Handler, st: &State) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let Some(seen) = read_request(&mut reader) else {
            return;
        };
        let close = seen
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || seen.version == 0;
        let req = LlmRequest {
            seq: st.seq.fetch_add(1, Ordering::SeqCst),
            json: serde_json::from_slice(&seen.body).unwrap_or(Value::Null),
            method: seen.method,
            target: seen.target,
            headers: seen.headers,
            body: seen.body,
        };
        // Recorded before the handler runs: a handler that panics (a failed
        // assertion on the request) still leaves the request to look at.
        st.requests.lock().expect("lock").push(req.clone());
        let reply = handler(&req);
        if !answer(&mut writer, reader.get_ref(), reply, st) || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Writes one reply; false when the connection must end.
fn answer(w: &mut TcpStream, r: &TcpStream, reply: LlmReply, st: &State) -> bool {
    match reply {
        LlmReply::Json {
            status,
            headers,
            body,
        } => {
            let mut head = head(status, &headers, "application/json");
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            w.write_all(&out).is_ok()
        }
        LlmReply::Sse {
            status,
            headers,
            events,
            gap,
        } => {
            if write_events(w, status, &headers, &events, gap).is_err() {
                st.write_failed.fetch_add(1, Ordering::SeqCst);
                return false;
            }
            w.write_all(b"0\r\n\r\n").is_ok()
        }
        LlmReply::SseHold {
            status,
            headers,
            events,
            gap,
            after,
        } => {
            let (rel, cut) = (
                st.release_gen.load(Ordering::SeqCst),
                st.cut_gen.load(Ordering::SeqCst),
            );
            if write_events(w, status, &headers, &events, gap).is_err() {
                st.write_failed.fetch_add(1, Ordering::SeqCst);
                return false;
            }
            st.holding.fetch_add(1, Ordering::SeqCst);
            let end = hold(r, st, rel, cut);
            st.holding.fetch_sub(1, Ordering::SeqCst);
            match end {
                HoldEnd::Released => {
                    st.released.fetch_add(1, Ordering::SeqCst);
                    for e in &after {
                        if write_chunk(w, e).is_err() {
                            st.write_failed.fetch_add(1, Ordering::SeqCst);
                            return false;
                        }
                    }
                    w.write_all(b"0\r\n\r\n").is_ok()
                }
                HoldEnd::PeerClosed => {
                    st.peer_closed.fetch_add(1, Ordering::SeqCst);
                    false
                }
                HoldEnd::Cut => {
                    st.cut.fetch_add(1, Ordering::SeqCst);
                    false
                }
                HoldEnd::Expired => {
                    st.expired.fetch_add(1, Ordering::SeqCst);
                    false
                }
            }
        }
        LlmReply::Delayed(wait, inner) => {
            let rel = st.release_gen.load(Ordering::SeqCst);
            let deadline = Instant::now() + wait.min(HOLD_LIMIT);
            while Instant::now() < deadline
                && st.release_gen.load(Ordering::SeqCst) == rel
                && !st.stopped.load(Ordering::SeqCst)
            {
                thread::sleep(POLL);
            }
            answer(w, r, *inner, st)
        }
        LlmReply::Close => false,
    }
}

enum HoldEnd {
    Released,
    Cut,
    PeerClosed,
    Expired,
}

/// Waits for a release or cut (a change of the generation counters from
/// what they were when the stream began), the peer's close, or the limit.
fn hold(r: &TcpStream, st: &State, rel: usize, cut: usize) -> HoldEnd {
    let _ = r.set_read_timeout(Some(POLL));
    let deadline = Instant::now() + HOLD_LIMIT;
    let end = loop {
        if st.cut_gen.load(Ordering::SeqCst) != cut || st.stopped.load(Ordering::SeqCst) {
            break HoldEnd::Cut;
        }
        if st.release_gen.load(Ordering::SeqCst) != rel {
            break HoldEnd::Released;
        }
        if Instant::now() >= deadline {
            break HoldEnd::Expired;
        }
        // A peek that reads 0 bytes is the peer's FIN; a reset is an error.
        // Bytes waiting (a pipelined request) leave the stream open.
        let mut one = [0u8; 1];
        match r.peek(&mut one) {
            Ok(0) => break HoldEnd::PeerClosed,
            Ok(_) => thread::sleep(POLL),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break HoldEnd::PeerClosed,
        }
    };
    let _ = r.set_read_timeout(Some(IDLE));
    end
}

fn head(status: u16, headers: &[(String, String)], content_type: &str) -> String {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        h.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h
}

fn write_events(
    w: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    events: &[Vec<u8>],
    gap: Duration,
) -> std::io::Result<()> {
    let mut h = head(status, headers, "text/event-stream");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
    {
        h.push_str("Cache-Control: no-cache\r\n");
    }
    h.push_str("Transfer-Encoding: chunked\r\n\r\n");
    w.write_all(h.as_bytes())?;
    for (i, e) in events.iter().enumerate() {
        if i > 0 && !gap.is_zero() {
            thread::sleep(gap.min(HOLD_LIMIT));
        }
        write_chunk(w, e)?;
    }
    Ok(())
}

fn write_chunk(w: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    if data.is_empty() {
        // A zero-size chunk would end the body.
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// A Python that imports `openai` (scripts/test.sh installs it into the
/// tests' virtualenv, first on PATH), or None.
pub fn sdk_python() -> Option<String> {
    let python = std::env::var("AI_SDK_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    // CI installs it (scripts/test.sh): there, a missing SDK is a failure,
    // not a skip.
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI is set but {python} cannot import openai (scripts/test.sh installs it)");
    }
    ok.then_some(python)
}

/// Runs engine/tests/ai_sdk.py with `args`; its JSON and exit status.
/// Killed after 60 s.
pub fn run_sdk_script(python: &str, args: &[String]) -> (Value, i32) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ai_sdk.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .env("AI_API_KEY", "sk-sdk")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run ai_sdk.py");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ai_sdk.py ran over 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    (v, status.code().unwrap_or(-1))
}
