//! `[routes.compression]` → [`Compression`]: the codings a route offers,
//! in its order of preference, the media types it compresses, the
//! smallest body worth compressing and each coding's level.
//!
//! Every key is checked even with `enabled = false`, so turning
//! compression back on cannot surface old mistakes. Media types are
//! patterns the engine matches against a response's `Content-Type`
//! without its parameters: `type/subtype`, `type/*`, or `type/*+suffix`
//! (`application/*+json` covers `application/problem+json`). `*/*` is
//! refused: it would compress images, archives and video, which are
//! compressed already, for CPU and no gain. An empty list is refused
//! too: it would compress nothing, which `enabled = false` says plainly.

use std::ops::RangeInclusive;

use toml::Spanned;

use super::{integer_or, size, unique_list};
use crate::error::Reporter;
use crate::model::{Compression, ContentCoding};
use crate::raw::RawCompression;

/// Levels each library accepts (zstd's 20–22 need a larger window than a
/// gateway should hold per response).
const GZIP_LEVELS: RangeInclusive<i64> = 1..=9;
const BROTLI_LEVELS: RangeInclusive<i64> = 0..=11;
const ZSTD_LEVELS: RangeInclusive<i64> = 1..=19;

/// `[routes.compression]` of route `path` (`routes[i]`): `Some(None)` when
/// the route does not compress, `None` when anything was reported.
pub(super) fn route_compression(
    raw: Option<&Spanned<RawCompression>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Option<Compression>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let c = raw.get_ref();
    let key = |k: &str| format!("{path}.compression.{k}");

    let algorithms = match &c.algorithms {
        None => Some(ContentCoding::ALL.to_vec()),
        Some(list) => {
            unique_list(
                list,
                &key("algorithms"),
                Some("lists no algorithm; to turn compression off, write enabled = false"),
                |s: &String| {
                    ContentCoding::from_token(s).ok_or_else(|| {
                    format!("unknown algorithm {s:?}; the choices are \"gzip\", \"br\" and \"zstd\"")
                })
                },
                r,
            )
        }
    };
    let content_types = match &c.content_types {
        None => Some(
            Compression::DEFAULT_CONTENT_TYPES
                .iter()
                .map(|&s| s.to_owned())
                .collect(),
        ),
        Some(list) => unique_list(
            list,
            &key("content-types"),
            Some("lists no media type; to turn compression off, write enabled = false"),
            |s: &String| media_type_pattern(s),
            r,
        ),
    };
    let min_size = c
        .min_size
        .as_ref()
        .map_or(Some(Compression::DEFAULT_MIN_SIZE), |v| {
            size(v, &key("min-size"), r)
        });
    let gzip_level = integer_or(
        c.gzip_level.as_ref(),
        &key("gzip-level"),
        GZIP_LEVELS,
        Compression::DEFAULT_GZIP_LEVEL,
        r,
    );
    let brotli_level = integer_or(
        c.brotli_level.as_ref(),
        &key("brotli-level"),
        BROTLI_LEVELS,
        Compression::DEFAULT_BROTLI_LEVEL,
        r,
    );
    let zstd_level = integer_or(
        c.zstd_level.as_ref(),
        &key("zstd-level"),
        ZSTD_LEVELS,
        Compression::DEFAULT_ZSTD_LEVEL,
        r,
    );

    let compression = Compression {
        algorithms: algorithms?,
        content_types: content_types?,
        min_size: min_size?,
        gzip_level: gzip_level?,
        brotli_level: brotli_level?,
        zstd_level: zstd_level?,
    };
    Some(c.enabled.unwrap_or(true).then_some(compression))
}

/// A media type pattern, lower-cased: `type/subtype`, `type/*` or
/// `type/*+suffix`, without parameters.
pub(crate) fn media_type_pattern(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'+-.^_`|~".contains(c))
    };
    if lower.contains(';') {
        return Err(format!(
            "{text:?} has parameters; write the media type alone (parameters are ignored when matching)"
        ));
    }
    let Some((kind, sub)) = lower.split_once('/') else {
        return Err(format!(
            "{text:?} is not a media type: write type/subtype, type/* or type/*+suffix"
        ));
    };
    if kind == "*" {
        return Err(format!(
            "{text:?} would compress images, archives and video, which are compressed already; \
             list the types to compress"
        ));
    }
    let sub_ok = match sub.strip_prefix('*') {
        Some("") => true,
        Some(rest) => rest.strip_prefix('+').is_some_and(token),
        None => token(sub),
    };
    if !token(kind) || !sub_ok {
        return Err(format!(
            "{text:?} is not a media type: write type/subtype, type/* or type/*+suffix"
        ));
    }
    Ok(lower)
}
