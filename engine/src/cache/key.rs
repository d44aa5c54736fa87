//! Cache keys (RFC 9111 §2, §4.1): the primary key of a request, and the
//! secondary key its stored response's Vary header selects.
//!
//! The primary key is scheme, host (lower-case) and target, plus, as
//! configured, request header values; the query can be kept as sent,
//! sorted (so `?a=1&b=2` and `?b=2&a=1` share an entry), or stripped of
//! parameters that do not change the answer (tracking tags). The method is
//! not in the key: only GET responses are stored, and HEAD is answered from
//! them.
//!
//! Vary matching compares each listed field's values after the
//! normalisation §4.1 allows: several field lines are joined with `, ` and
//! whitespace around list members is dropped; values are otherwise compared
//! byte for byte (case matters), names ignoring case.

use crate::http::text::{list, trim};

/// How query strings enter the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyOptions {
    /// Sort query parameters (stable, by the whole `name=value`).
    pub(crate) sort_query: bool,
    /// Parameters left out of the key, by name.
    pub(crate) drop_params: Vec<String>,
    /// Request headers whose values are part of the key (lower-case names).
    pub(crate) headers: Vec<String>,
}

/// Appends the primary key of a request to `out`.
///
/// `header` looks up a request header's (joined) value by lower-case name.
pub(crate) fn primary(
    out: &mut Vec<u8>,
    scheme: &[u8],
    host: &[u8],
    path: &[u8],
    query: Option<&[u8]>,
    options: &KeyOptions,
    values: impl Fn(&str, &mut dyn FnMut(&[u8])),
) {
    out.extend_from_slice(scheme);
    out.extend_from_slice(b"://");
    out.extend(host.iter().map(u8::to_ascii_lowercase));
    out.extend_from_slice(path);
    if let Some(q) = query {
        let kept = q
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split(|&b| b == b'=').next().unwrap_or(p);
                !options.drop_params.iter().any(|d| d.as_bytes() == name)
            });
        if options.sort_query {
            // Sorted on the stack: queries rarely have more than a few
            // parameters, and a lookup must not allocate.
            let mut few: [&[u8]; 32] = [&[]; 32];
            let mut n = 0;
            let mut many = Vec::new();
            for p in kept {
                if n < few.len() {
                    few[n] = p;
                    n += 1;
                } else {
                    if many.is_empty() {
                        many.extend_from_slice(&few);
                    }
                    many.push(p);
                }
            }
            let params: &mut [&[u8]] = if many.is_empty() {
                &mut few[..n]
            } else {
                &mut many
            };
            // By name, keeping the order of a repeated name's values
            // (`?id=2&id=1` and `?id=1&id=2` may mean different things).
            params.sort_by(|a, b| param_name(a).cmp(param_name(b)));
            push_params(out, params.iter().copied());
        } else {
            push_params(out, kept);
        }
    }
    for name in &options.headers {
        // A separator that cannot occur in a target or a field value. All
        // of the field's lines count, joined, as an origin may read any of
        // them; absent differs from empty.
        out.push(0);
        out.extend_from_slice(name.as_bytes());
        let mut present = false;
        values(name, &mut |v| {
            out.push(if present { b',' } else { b':' });
            present = true;
            out.extend_from_slice(v);
        });
        if !present {
            out.push(b'!');
        }
    }
}

fn param_name(p: &[u8]) -> &[u8] {
    p.split(|&b| b == b'=').next().unwrap_or(p)
}

/// Appends `?p1&p2...`, nothing when there are none.
fn push_params<'a>(out: &mut Vec<u8>, params: impl Iterator<Item = &'a [u8]>) {
    for (i, p) in params.enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(p);
    }
}

/// The field names a Vary value lists, lower-case, and whether it is `*`.
pub(crate) fn vary_names(vary: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut names = Vec::new();
    let mut any = false;
    for item in list(vary) {
        if item == b"*" {
            any = true;
        } else {
            names.push(item.to_ascii_lowercase());
        }
    }
    (names, any)
}

/// Appends the secondary key to `out`: for each name Vary lists, the
/// request's normalised values (or absence). Two requests select the same
/// stored response when their secondary keys are equal. `values` yields
/// every field line's value for a lower-case name, in order, to the
/// visitor it is given; several lines count as one joined with commas
/// (RFC 9110 §5.3).
pub(crate) fn secondary(
    out: &mut Vec<u8>,
    names: &[Vec<u8>],
    values: impl Fn(&[u8], &mut dyn FnMut(&[u8])),
) {
    for name in names {
        out.extend_from_slice(name);
        let mut present = false;
        values(name, &mut |v| {
            out.push(if present { b',' } else { b'=' });
            present = true;
            normalise_list(out, v);
        });
        // Absent differs from present-but-empty.
        if !present {
            out.push(b'!');
        }
        out.push(0);
    }
}

/// Appends `value` with the whitespace around its list members dropped.
fn normalise_list(out: &mut Vec<u8>, value: &[u8]) {
    for (i, member) in value.split(|&b| b == b',').enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(trim(member));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(query: Option<&str>, options: &KeyOptions, tenant: Option<&'static str>) -> String {
        let mut out = Vec::new();
        primary(
            &mut out,
            b"https",
            b"API.Example.com",
            b"/v1/items",
            query.map(str::as_bytes),
            options,
            |name, each| {
                if let (true, Some(t)) = (name == "x-tenant", tenant) {
                    each(t.as_bytes());
                }
            },
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn primary_keys() {
        let plain = KeyOptions::default();
        assert_eq!(key(None, &plain, None), "https://api.example.com/v1/items");
        assert_eq!(
            key(Some("b=2&a=1"), &plain, None),
            "https://api.example.com/v1/items?b=2&a=1"
        );
        let sorted = KeyOptions {
            sort_query: true,
            drop_params: vec!["utm_source".into()],
            ..Default::default()
        };
        assert_eq!(
            key(Some("b=2&utm_source=x&a=1&"), &sorted, None),
            key(Some("a=1&b=2"), &sorted, None)
        );
        let by_tenant = KeyOptions {
            headers: vec!["x-tenant".into()],
            ..Default::default()
        };
        assert_ne!(
            key(None, &by_tenant, Some("a")),
            key(None, &by_tenant, Some("b"))
        );
        assert_ne!(key(None, &by_tenant, Some("")), key(None, &by_tenant, None));
        // A repeated name keeps its values' order.
        assert_ne!(
            key(Some("id=2&id=1"), &sorted, None),
            key(Some("id=1&id=2"), &sorted, None)
        );
        assert_eq!(
            key(Some("b=1&id=2&a=0&id=1"), &sorted, None),
            key(Some("a=0&id=2&b=1&id=1"), &sorted, None)
        );
    }

    #[test]
    fn vary_selects_by_normalised_values() {
        let (names, any) = vary_names(b"Accept-Encoding , accept-language");
        assert!(!any);
        assert_eq!(
            names,
            vec![b"accept-encoding".to_vec(), b"accept-language".to_vec()]
        );
        assert!(vary_names(b"*").1);

        let request = |enc: Option<&'static str>| {
            let mut out = Vec::new();
            secondary(&mut out, &names, move |n, each| {
                if let (b"accept-encoding", Some(v)) = (n, enc) {
                    each(v.as_bytes());
                }
            });
            out
        };
        assert_eq!(request(Some("gzip, br")), request(Some("gzip,br")));
        assert_eq!(request(Some(" gzip ,br ")), request(Some("gzip,br")));
        assert_ne!(request(Some("gzip")), request(Some("br")));
        assert_ne!(
            request(Some("GZIP")),
            request(Some("gzip")),
            "values keep their case"
        );
        assert_ne!(request(Some("")), request(None), "empty is not absent");
    }
}
