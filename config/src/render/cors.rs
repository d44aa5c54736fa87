//! `[routes.cors]` written back: every key, `allow-methods` resolved (the
//! default list when the file left it out), `allow-headers` and
//! `expose-headers` as lists (empty reads back as left out), `max-age`
//! only when set, origins as held (lower-case, default ports left out).

use serde::Serialize;

use crate::model::{AllowOrigins, Cors};
use crate::units::format_duration;

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct CorsOut<'a> {
    allow_origins: Vec<String>,
    allow_methods: &'a [String],
    allow_headers: &'a [String],
    expose_headers: &'a [String],
    allow_credentials: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<String>,
    allow_private_network: bool,
}

impl<'a> CorsOut<'a> {
    pub(super) fn new(c: &'a Cors) -> Self {
        CorsOut {
            allow_origins: match &c.allow_origins {
                AllowOrigins::Any => vec!["*".to_owned()],
                AllowOrigins::List(list) => list.iter().map(ToString::to_string).collect(),
            },
            allow_methods: &c.allow_methods,
            allow_headers: &c.allow_headers,
            expose_headers: &c.expose_headers,
            allow_credentials: c.allow_credentials,
            max_age: c.max_age.map(format_duration),
            allow_private_network: c.allow_private_network,
        }
    }
}
