//! Value checks shared by flags and the scenario file, so both reject the
//! same things with the same words.

use super::PickKind;
use crate::plan::Driver;

pub(super) fn check_fraction(r: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err("must be a fraction between 0 and 1 (0.001 = 0.1%)".to_string())
    }
}

pub(super) fn parse_driver(s: &str) -> Result<Driver, String> {
    match s {
        "io_uring" | "io-uring" | "uring" => Ok(Driver::IoUring),
        "epoll" | "legacy" => Ok(Driver::Epoll),
        _ => Err(format!("`{s}`: expected io_uring or epoll")),
    }
}

pub(super) fn parse_pick(s: &str) -> Result<PickKind, String> {
    match s {
        "round-robin" => Ok(PickKind::RoundRobin),
        "random" => Ok(PickKind::Random),
        _ => Err(format!("`{s}`: expected round-robin or random")),
    }
}

/// A method is a token (RFC 9110 §9.1); upper case by convention only.
pub(super) fn parse_method(m: &str) -> Result<&str, String> {
    if !m.is_empty() && m.bytes().all(is_tchar) {
        Ok(m)
    } else {
        Err(format!("`{m}` is not a valid method"))
    }
}

pub(super) fn parse_path(p: &str) -> Result<&str, String> {
    if !p.starts_with('/') {
        return Err(format!("`{p}`: a path starts with `/`"));
    }
    if p.bytes().any(|b| b <= b' ' || b == 0x7f || !b.is_ascii()) {
        return Err(format!("`{p}`: percent-encode spaces and non-ASCII"));
    }
    Ok(p)
}

pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field names are tokens; values may not contain CR, LF or NUL
/// (RFC 9110 §5.5), which would split the request.
pub(super) fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("header value contains CR, LF or NUL".to_string());
    }
    Ok(())
}
