//! A route's `[routes.compression]`: which content codings the gateway
//! may apply to the route's answers, to which media types, from which
//! size, at which level.
//!
//! The table holds policy, not mechanism: the engine negotiates a coding
//! per request from `Accept-Encoding` (RFC 9110 §12.5.3) and decides per
//! response whether the rules admit it. Levels are held per algorithm
//! since their scales differ (gzip 1–9, brotli 0–11, zstd 1–19).

use std::fmt;

/// A content coding the gateway can apply (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// `gzip` (RFC 1952), the one every client speaks.
    Gzip,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl ContentCoding {
    /// Every coding, in the default order of preference.
    pub const ALL: [ContentCoding; 3] = [
        ContentCoding::Zstd,
        ContentCoding::Brotli,
        ContentCoding::Gzip,
    ];

    /// Its token, as in `Accept-Encoding` and `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Brotli => "br",
            ContentCoding::Zstd => "zstd",
        }
    }

    /// The coding a token names, case-insensitively.
    pub fn from_token(token: &str) -> Option<ContentCoding> {
        ContentCoding::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for ContentCoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[routes.compression]`, present and not `enabled = false`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Compression {
    /// `algorithms`: the codings offered, in the server's order of
    /// preference (which breaks ties between equal q-values); none twice,
    /// not empty. Default `["zstd", "br", "gzip"]`.
    pub algorithms: Vec<ContentCoding>,
    /// `content-types`: media types compressed, lower-case, each
    /// `type/subtype`, `type/*` or `type/*+suffix`; none twice, not empty.
    /// Default [`Compression::DEFAULT_CONTENT_TYPES`].
    pub content_types: Vec<String>,
    /// `min-size`: a body whose Content-Length is below this many bytes is
    /// sent as is; a body of unknown length is compressed. Default 1 KiB.
    pub min_size: u64,
    /// `gzip-level`: 1 (fastest) to 9; default 6.
    pub gzip_level: u8,
    /// `brotli-level`: 0 to 11; default 4.
    pub brotli_level: u8,
    /// `zstd-level`: 1 to 19; default 3.
    pub zstd_level: u8,
}

impl Compression {
    /// What an API gateway mostly answers with: JSON (and its `+json`
    /// types), JavaScript, XML, SVG and every text type.
    pub const DEFAULT_CONTENT_TYPES: &'static [&'static str] = &[
        "application/json",
        "application/*+json",
        "application/javascript",
        "application/xml",
        "application/*+xml",
        "image/svg+xml",
        "text/*",
    ];
    /// A body below this is not worth a coding's framing and CPU: it fits
    /// in a packet either way.
    pub const DEFAULT_MIN_SIZE: u64 = 1024;
    pub const DEFAULT_GZIP_LEVEL: u8 = 6;
    pub const DEFAULT_BROTLI_LEVEL: u8 = 4;
    pub const DEFAULT_ZSTD_LEVEL: u8 = 3;

    /// The level configured for `coding`.
    pub fn level(&self, coding: ContentCoding) -> u8 {
        match coding {
            ContentCoding::Gzip => self.gzip_level,
            ContentCoding::Brotli => self.brotli_level,
            ContentCoding::Zstd => self.zstd_level,
        }
    }
}
