//! `[routes.cors]` as written: the browser cross-origin rules a route
//! answers with. Kept in its own file so the route table only gains one
//! field.

use serde::Deserialize;
use toml::Spanned;

use super::Scalar;

/// `[routes.cors]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawCors {
    pub(crate) allow_origins: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) allow_methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) allow_headers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) expose_headers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) allow_credentials: Option<Spanned<bool>>,
    pub(crate) max_age: Option<Spanned<Scalar>>,
    pub(crate) allow_private_network: Option<bool>,
}
