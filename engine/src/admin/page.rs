//! `GET /`: the status page, one HTML file (`status.html`, with its style
//! and script inline) built into the binary and drawn in the browser from
//! `GET /stats`.
//!
//! The page holds no data, so it is served without the admin token; the
//! script asks for the token and sends it on its own requests. What guards
//! the page is its `Content-Security-Policy`: it may run only the one
//! script and style it was built with (allowed by their SHA-256, computed
//! here from the file once, so an edit cannot leave a stale hash behind),
//! connect only to this origin, load nothing else and be framed by no one.
//! An injected `<script>` or event handler attribute would not run even if
//! some string reached the DOM as markup (the script puts every string in
//! as text). The trade-off: no external assets, no inline `style`
//! attributes (styles set through the CSSOM are allowed) and one script
//! block; about 23 KiB sent whole on each load, which is fine for a page an
//! operator opens now and then.

use std::sync::LazyLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::api::Answer;

/// The page, as served.
const PAGE: &str = include_str!("status.html");

/// The `Content-Security-Policy` of [`PAGE`].
static POLICY: LazyLock<String> = LazyLock::new(|| policy(PAGE));

pub(crate) fn page() -> Answer {
    let mut a = Answer::typed("text/html; charset=utf-8", PAGE.as_bytes().to_vec());
    a.headers.push(("Content-Security-Policy", POLICY.clone()));
    a.headers.push(("X-Content-Type-Options", "nosniff".into()));
    a.headers.push(("X-Frame-Options", "DENY".into()));
    a.headers.push(("Referrer-Policy", "no-referrer".into()));
    a
}

/// The policy for `html`: its `<script>` and `<style>` blocks allowed by
/// hash, `fetch` to this origin, images only as `data:` URLs (the empty
/// favicon), everything else refused.
fn policy(html: &str) -> String {
    let script = inline(html, "script").map_or_else(|| "'none'".into(), hash_source);
    let style = inline(html, "style").map_or_else(|| "'none'".into(), hash_source);
    format!(
        "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The text of the first `<tag>` element, exactly as the browser hashes
/// it: everything between the end of the start tag and the end tag.
fn inline<'a>(html: &'a str, tag: &str) -> Option<&'a str> {
    let start = html.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = html[start..].find(&format!("</{tag}>"))?;
    Some(&html[start..start + len])
}

/// A CSP hash source: `'sha256-BASE64'`.
fn hash_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sources_are_base64_sha256() {
        // SHA-256 of "" and of "abc", from FIPS 180-2's examples.
        assert_eq!(
            hash_source(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
        assert_eq!(
            hash_source("abc"),
            "'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='"
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_page_s_script_and_style() {
        let html = "<style>b{}</style><p><script>go()</script><script>x</script>";
        let p = policy(html);
        assert!(
            p.contains(&format!("script-src {};", hash_source("go()"))),
            "{p}"
        );
        assert!(
            p.contains(&format!("style-src {};", hash_source("b{}"))),
            "{p}"
        );
        assert!(p.starts_with("default-src 'none';"), "{p}");
        assert!(p.contains("connect-src 'self'"), "{p}");
        assert!(p.contains("img-src 'self' data:"), "{p}");
        assert!(!p.contains("unsafe"), "{p}");
        let bare = policy("<p>nothing</p>");
        assert!(bare.contains("script-src 'none';"), "{bare}");
    }

    /// What the policy would block, the page must not need: one script
    /// and one style block (only the first of each is allowed), no inline
    /// handlers or style attributes, nothing loaded from elsewhere, no
    /// markup built from strings.
    #[test]
    fn the_page_needs_nothing_its_policy_refuses() {
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert_eq!(PAGE.matches("<style").count(), 1);
        let markup = PAGE.split("<script>").next().expect("a head part");
        for banned in [
            " style=",
            " onclick=",
            " onload=",
            " onsubmit=",
            " src=",
            "http://",
            "https://",
        ] {
            assert!(!markup.contains(banned), "the markup holds {banned:?}");
        }
        let script = inline(PAGE, "script").expect("a script");
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "localStorage",
            "sessionStorage",
            "document.cookie",
        ] {
            assert!(!script.contains(banned), "the script uses {banned}");
        }
        let p = policy(PAGE);
        assert!(p.contains(&hash_source(script)), "{p}");
    }

    #[test]
    fn the_answer_is_html_with_its_policy() {
        let a = page();
        assert_eq!(a.status, 200);
        assert_eq!(a.content_type, "text/html; charset=utf-8");
        let header = |name: &str| {
            a.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("Content-Security-Policy"),
            Some(policy(PAGE).as_str())
        );
        assert_eq!(header("X-Content-Type-Options"), Some("nosniff"));
        assert!(a.body.starts_with(b"<!doctype html>"));
    }
}
