//! Header rules, rewrites, redirects and error formats: each rule reports
//! its exact path, and a config using every key reads back equal from
//! both output formats.

mod common;

use common::*;
use ringway_config::{Action, Config, ErrorFormat, Part, PathRewrite, Template, Var};

const EVERY_KEY: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"
error-format = "json"
[listeners.request-headers]
set = { "x-edge" = "1" }
[listeners.response-headers]
add = { "x-frame-options" = "DENY" }

[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000"]

[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "app"
strip-prefix = true
error-format = "text"
[routes.request-headers]
remove = ["x-internal-*", "cookie"]
rename = { "x-old" = "X-New" }
set = { "x-client" = "$client_ip", "x-id" = "${request_id}-$$" }
add-if-absent = { "x-tenant" = "default" }
add = { "x-echo" = "$header:x-source" }
[routes.response-headers]
remove = ["server"]
set = { "x-status" = "$status $upstream_server" }
[routes.query]
remove = ["debug"]
add = { "source" = "$route" }
[[routes.error-bodies]]
status = 429
content-type = "application/json"
body = '{"slow": "down", "id": "$request_id"}'

[[routes]]
name = "v2"
path-prefix = "/old/"
upstream = "app"
rewrite-prefix = "/v2/"

[[routes]]
name = "users"
path-prefix = "/users/"
upstream = "app"
rewrite = { regex = "^/users/(\\d+)$", replace = "/u/$1" }

[[routes]]
name = "moved"
path-prefix = "/item/"
rewrite = { regex = "^/item/(\\d+)$", replace = "/items/$1" }
[routes.redirect]
status = 308
location = "https://$host$path$query#$1"
"#;

#[test]
fn every_transform_key_reads_back_in_both_formats() {
    let config = valid(EVERY_KEY);
    let json = config.to_json(false);
    assert_eq!(Config::from_json_str(&json), Ok(config.clone()), "{json}");
    let toml = config.to_toml();
    assert_eq!(Config::from_toml_str(&toml), Ok(config.clone()), "{toml}");

    let l = &config.listeners[0];
    assert_eq!(l.error_format, ErrorFormat::Json);
    let api = &config.routes[0].transform;
    assert_eq!(api.path, Some(PathRewrite::StripPrefix));
    assert_eq!(api.error_format, Some(ErrorFormat::Text));
    let rules = api.request_headers.as_ref().expect("request rules");
    assert_eq!(rules.remove, ["x-internal-*", "cookie"]);
    assert_eq!(rules.rename, [("x-old".to_owned(), "X-New".to_owned())]);
    let id = &rules.set.iter().find(|(n, _)| n == "x-id").expect("x-id").1;
    assert_eq!(
        id,
        &Template {
            source: "${request_id}-$$".into(),
            parts: vec![Part::Var(Var::RequestId), Part::Text("-$".into())],
        }
    );
    assert_eq!(api.error_bodies[0].status, 429);
    match &config.routes[3].action {
        Action::Redirect(r) => assert_eq!(r.status, 308),
        other => panic!("not a redirect: {other:?}"),
    }
}

#[test]
fn transform_rules_report_their_paths() {
    let route = |body: &str| {
        with_base(
            "",
            &format!("[[routes]]\nname = \"t\"\npath-prefix = \"/t/\"\n{body}\n"),
        )
    };
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "unknown variable",
            route("upstream = \"app\"\n[routes.request-headers]\nset = { \"x-a\" = \"$clinet_ip\" }"),
            "routes[1].request-headers.set.x-a",
            "unknown variable `$clinet_ip`",
        ),
        (
            "status on the request side",
            route("upstream = \"app\"\n[routes.request-headers]\nadd = { \"x-a\" = \"$status\" }"),
            "routes[1].request-headers.add.x-a",
            "known only once the upstream has answered",
        ),
        (
            "framing header",
            route("upstream = \"app\"\n[routes.response-headers]\nset = { \"content-length\" = \"1\" }"),
            "routes[1].response-headers.set.content-length",
            "cannot be used here",
        ),
        (
            "host on the request side",
            route("upstream = \"app\"\n[routes.request-headers]\nremove = [\"host\"]"),
            "routes[1].request-headers.remove[0]",
            "host-header",
        ),
        (
            "a bare star",
            route("upstream = \"app\"\n[routes.response-headers]\nremove = [\"*\"]"),
            "routes[1].response-headers.remove[0]",
            "every field",
        ),
        (
            "request rules on a built-in route",
            route("[routes.respond]\n[routes.request-headers]\nset = { \"x-a\" = \"1\" }"),
            "routes[1].request-headers",
            "routes that proxy",
        ),
        (
            "two path rewrites",
            route("upstream = \"app\"\nstrip-prefix = true\nrewrite-prefix = \"/v/\""),
            "routes[1].rewrite-prefix",
            "not both",
        ),
        (
            "strip on an exact path",
            with_base(
                "",
                "[[routes]]\nname = \"t\"\npath = \"/t\"\nupstream = \"app\"\nstrip-prefix = true\n",
            ),
            "routes[1].strip-prefix",
            "path-prefix",
        ),
        (
            "a bad regex",
            route("upstream = \"app\"\nrewrite = { regex = \"(\", replace = \"/x\" }"),
            "routes[1].rewrite.regex",
            "not a valid regex",
        ),
        (
            "a capture the regex lacks",
            route("upstream = \"app\"\nrewrite = { regex = \"^/t/(a)$\", replace = \"/$2\" }"),
            "routes[1].rewrite.replace",
            "1 capture group",
        ),
        (
            "a capture without a regex",
            route("[routes.redirect]\nlocation = \"/x/$1\""),
            "routes[1].redirect.location",
            "it has none",
        ),
        (
            "a redirect status",
            route("[routes.redirect]\nstatus = 200\nlocation = \"/x\""),
            "routes[1].redirect.status",
            "301, 302, 303, 307 or 308",
        ),
        (
            "an error format",
            route("upstream = \"app\"\nerror-format = \"xml\""),
            "routes[1].error-format",
            "\"text\" or \"json\"",
        ),
        (
            "an error body status",
            route("upstream = \"app\"\n[[routes.error-bodies]]\nstatus = 200\nbody = \"x\""),
            "routes[1].error-bodies[0].status",
            "400",
        ),
        (
            "a listener's rule",
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[listeners.response-headers]\n\
             add = { \"connection\" = \"x\" }\n[[upstreams]]\nname = \"app\"\n\
             servers = [\"127.0.0.1:3000\"]\n[[routes]]\nupstream = \"app\"\n"
                .to_owned(),
            "listeners[0].response-headers.add.connection",
            "hop-by-hop",
        ),
        (
            "a query value",
            route("upstream = \"app\"\n[routes.query]\nadd = { a = \"x y\" }"),
            "routes[1].query.add.a",
            "percent-encode",
        ),
    ];
    for (case, src, path, fragment) in cases {
        assert_one_error(case, src, path, fragment);
    }
}
