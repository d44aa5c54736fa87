//! A minimal admin API client for the `ringway reload` and `ringway status`
//! commands: one request per connection, answer read to the close; and the
//! server's own quantile estimate, for windows of `GET /stats` buckets.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use crate::stats::histogram::quantile;

/// How long the CLI waits for the admin API (a reload waits for every
/// worker to acknowledge, at most a few seconds).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one request; returns the status and body.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let (content_type, bytes) = body.unwrap_or(("", b""));
    if !content_type.is_empty() {
        req.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(bytes)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed admin answer");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.to_string()))
}
