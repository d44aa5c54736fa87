//! Builders the cache's tests share: origin replies, a gateway whose one
//! route caches, requests, and what the origin saw.

use std::net::SocketAddr;

use super::{driver, Response, TestClient, TestGateway, TestUpstream};

/// A response with these header lines and body.
pub fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// A gateway of `workers` workers whose one route caches, in front of
/// `origin`, with `extra` top-level lines.
pub fn gateway(
    origin: &TestUpstream,
    workers: usize,
    route_cache: &str,
    extra: &str,
) -> TestGateway {
    gateway_at(origin.addr, workers, route_cache, extra)
}

/// [`gateway`], in front of any server at `origin`.
pub fn gateway_at(
    origin: SocketAddr,
    workers: usize,
    route_cache: &str,
    extra: &str,
) -> TestGateway {
    let toml = format!(
        "workers = {workers}\n{extra}\n[[upstreams]]\nname = \"up\"\nservers = [\"{origin}\"]\n\
         [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n{route_cache}\n"
    );
    TestGateway::start(&toml, driver())
}

/// Sends a request with extra header lines and reads the answer.
pub fn call(c: &mut TestClient, method: &str, path: &str, headers: &str) -> Response {
    c.send(format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").as_bytes());
    c.read_response(method == "HEAD").expect("response")
}

/// A GET on a new connection.
pub fn get(gw: &TestGateway, path: &str, headers: &str) -> Response {
    call(&mut gw.client(), "GET", path, headers)
}

/// GET requests the origin saw for `target`.
pub fn seen(origin: &TestUpstream, target: &str) -> usize {
    origin
        .seen
        .lock()
        .expect("lock")
        .iter()
        .filter(|s| s.target == target && s.method == "GET")
        .count()
}

/// The answer's `Cache-Status`, or "".
pub fn cache_status(r: &Response) -> &str {
    r.header("cache-status").unwrap_or("")
}
