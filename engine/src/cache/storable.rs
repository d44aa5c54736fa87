//! What a shared cache may store (RFC 9111 §3), and why not when it may
//! not: the reason becomes the `detail` of the Cache-Status header
//! (RFC 9211 §2.8), so an operator can see why a response was not cached.

use super::directives::{RequestDirectives, ResponseDirectives};
use super::freshness::heuristically_cacheable;

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// Only GET responses are stored (HEAD is answered from them).
    Method,
    /// 1xx, 206 (no range support), 304, or a status that is neither
    /// heuristically cacheable nor explicitly given a lifetime.
    Status,
    /// `no-store` in the request or the response.
    NoStore,
    /// `private`: for the client's own cache only.
    Private,
    /// The request carried Authorization and the response did not allow
    /// sharing it (§3.5).
    Authorization,
    /// `Vary: *`: no later request can be shown to match.
    VaryAny,
    /// Nothing says how long it stays fresh, and no heuristic applies.
    NoLifetime,
}

impl NotStored {
    /// The token for Cache-Status `detail`.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::VaryAny => "vary-star",
            NotStored::NoLifetime => "no-lifetime",
        }
    }
}

/// What §3 looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub(crate) method_get: bool,
    pub(crate) request: &'a RequestDirectives,
    /// The request carried an Authorization header.
    pub(crate) authorization: bool,
    pub(crate) status: u16,
    pub(crate) response: &'a ResponseDirectives,
    /// The response carried Expires (valid or not).
    pub(crate) expires: bool,
    /// The response's Vary lists `*`.
    pub(crate) vary_any: bool,
}

/// May a shared cache store this response (RFC 9111 §3, §3.5)?
pub(crate) fn storable(x: &Exchange<'_>) -> Result<(), NotStored> {
    if !x.method_get {
        return Err(NotStored::Method);
    }
    if x.status < 200 || x.status == 206 || x.status == 304 {
        return Err(NotStored::Status);
    }
    let res = x.response;
    if x.request.no_store || res.no_store {
        return Err(NotStored::NoStore);
    }
    if res.private {
        return Err(NotStored::Private);
    }
    if x.authorization && !(res.must_revalidate || res.public || res.s_maxage.is_some()) {
        return Err(NotStored::Authorization);
    }
    if x.vary_any {
        return Err(NotStored::VaryAny);
    }
    let explicit = res.public || res.max_age.is_some() || res.s_maxage.is_some() || x.expires;
    if explicit || heuristically_cacheable(x.status) {
        Ok(())
    } else if matches!(x.status, 302 | 303 | 307) || x.status >= 500 {
        Err(NotStored::NoLifetime)
    } else {
        Err(NotStored::Status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        method_get: bool,
        req: &str,
        auth: bool,
        status: u16,
        res: &str,
    ) -> Result<(), NotStored> {
        let request = RequestDirectives::parse([req.as_bytes()]);
        let response = ResponseDirectives::parse([res.as_bytes()]);
        storable(&Exchange {
            method_get,
            request: &request,
            authorization: auth,
            status,
            response: &response,
            expires: false,
            vary_any: false,
        })
    }

    #[test]
    fn the_rules_of_section_3() {
        use NotStored::*;
        // (GET?, request Cache-Control, Authorization?, status, response
        // Cache-Control, verdict)
        type Case = (
            bool,
            &'static str,
            bool,
            u16,
            &'static str,
            Result<(), NotStored>,
        );
        let cases: &[Case] = &[
            (true, "", false, 200, "max-age=60", Ok(())),
            (true, "", false, 200, "", Ok(())),
            (true, "", false, 404, "", Ok(())),
            (false, "", false, 200, "max-age=60", Err(Method)),
            (true, "", false, 206, "max-age=60", Err(Status)),
            (true, "", false, 304, "max-age=60", Err(Status)),
            (true, "", false, 302, "", Err(NoLifetime)),
            (true, "", false, 302, "max-age=60", Ok(())),
            (true, "", false, 503, "", Err(NoLifetime)),
            (true, "no-store", false, 200, "max-age=60", Err(NoStore)),
            (true, "", false, 200, "no-store, max-age=60", Err(NoStore)),
            (true, "", false, 200, "private, max-age=60", Err(Private)),
            (true, "", true, 200, "max-age=60", Err(Authorization)),
            (true, "", true, 200, "public, max-age=60", Ok(())),
            (true, "", true, 200, "s-maxage=60", Ok(())),
            (true, "", true, 200, "must-revalidate, max-age=60", Ok(())),
        ];
        for (i, (get, req, auth, status, res, want)) in cases.iter().enumerate() {
            assert_eq!(check(*get, req, *auth, *status, res), *want, "case {i}");
        }
        let request = RequestDirectives::default();
        let response = ResponseDirectives::parse([&b"max-age=60"[..]]);
        let vary = Exchange {
            method_get: true,
            request: &request,
            authorization: false,
            status: 200,
            response: &response,
            expires: false,
            vary_any: true,
        };
        assert_eq!(storable(&vary), Err(VaryAny));
        assert_eq!(VaryAny.detail(), "vary-star");
    }
}
