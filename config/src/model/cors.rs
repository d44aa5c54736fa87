//! `[routes.cors]`: which other origins' pages may call a route from a
//! browser (the Fetch standard's CORS protocol), validated.
//!
//! Origins are held as browsers serialize them (RFC 6454 §6.2: scheme and
//! host lower-case, the scheme's default port left out), so the engine
//! compares a request's `Origin` byte for byte, without parsing it.

use std::fmt;
use std::time::Duration;

/// `[routes.cors]` of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cors {
    /// `allow-origins`: the origins whose pages may read answers.
    pub allow_origins: AllowOrigins,
    /// `allow-methods`: the methods a preflight may ask for, in file order;
    /// [`Cors::DEFAULT_METHODS`] when left out.
    pub allow_methods: Vec<String>,
    /// `allow-headers`: the request headers a preflight allows, as
    /// written; empty (or left out) allows whatever the preflight asks
    /// for, echoing its `Access-Control-Request-Headers`.
    pub allow_headers: Vec<String>,
    /// `expose-headers`: response headers, as written, that a page's
    /// script may read beyond the CORS-safelisted ones; default none.
    pub expose_headers: Vec<String>,
    /// `allow-credentials`: whether pages may send cookies and HTTP
    /// authentication and read the answer; default false. Never with
    /// [`AllowOrigins::Any`].
    pub allow_credentials: bool,
    /// `max-age`: how long a browser may keep a preflight's answer, in
    /// whole seconds; `None` sends no `Access-Control-Max-Age` (browsers
    /// then keep it 5 seconds).
    pub max_age: Option<Duration>,
    /// `allow-private-network`: whether a preflight asking for access to
    /// a private network (Private Network Access) is allowed; default
    /// false.
    pub allow_private_network: bool,
}

impl Cors {
    /// `allow-methods` when left out: the methods APIs use (as Kong's
    /// default), OPTIONS excluded since the gateway answers preflights.
    pub const DEFAULT_METHODS: &'static [&'static str] =
        &["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"];

    /// The longest `max-age`: Firefox's own cap (24 hours); Chromium caps
    /// at 2 hours.
    pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
}

/// `allow-origins`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AllowOrigins {
    /// `["*"]`: every origin.
    Any,
    /// Origins and patterns, in file order, none twice.
    List(Vec<OriginPattern>),
}

/// One entry of `allow-origins` other than `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OriginPattern {
    /// An origin as browsers send it: `https://app.example.com`,
    /// `http://127.0.0.1:8080`, `http://[::1]:3000`.
    Exact(String),
    /// `https://*.example.com`: the scheme and port (none: the default)
    /// must match, and the host must end in `suffix` (`.example.com`)
    /// with at least one label before it, so the apex is not included.
    Subdomains {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Exact(origin) => f.write_str(origin),
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                write!(f, "{scheme}://*{suffix}")?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                Ok(())
            }
        }
    }
}
