//! A compiled config: everything a worker consults per request, built once
//! when a config is accepted and never mutated afterwards.
//!
//! The validated `Config` comes from `ringway-config`; compiling it adds the
//! router and the responders' prebuilt bytes, so answering from the
//! built-in responder is one buffer append plus the Date line.

use bytes::{Bytes, BytesMut};
use ringway_config::{Action, Config, ConfigErrors};

use crate::http::write;
use crate::policy::Policies;
use crate::router::Router;
use crate::tls::ListenerTls;

/// A built-in answer with its bytes laid out ahead of time.
#[derive(Debug)]
pub struct Prebuilt {
    pub status: u16,
    /// Status line, configured headers, Server and Content-Length; the
    /// Date and Connection lines and the blank line follow per response.
    pub head: Bytes,
    pub body: Bytes,
}

/// An immutable compiled config.
pub struct Snapshot {
    pub generation: u64,
    pub config: Config,
    pub router: Router,
    /// Per route: its prebuilt answer when the route responds itself.
    pub responders: Vec<Option<Prebuilt>>,
    pub policies: Policies,
    /// Per listener: its TLS settings, compiled (certificates loaded).
    pub tls: Vec<Option<ListenerTls>>,
    /// The headers listeners carry client-certificate subjects in; removed
    /// from every client request.
    pub subject_headers: Vec<String>,
    /// Per upstream: its TLS settings, compiled (CA and client certificate
    /// loaded).
    pub upstream_tls: Vec<Option<crate::tls::client::UpstreamTls>>,
}

impl Snapshot {
    /// Compiles `config` as generation `generation` for `workers` workers,
    /// carrying over from `prev` the shared state of what is unchanged.
    pub fn compile(
        config: Config,
        generation: u64,
        prev: Option<&Snapshot>,
        workers: usize,
    ) -> Result<Snapshot, ConfigErrors> {
        let router = Router::new(&config);
        let policies = Policies::compile(&config, prev.map(|p| &p.policies), workers)?;
        let mut tls = Vec::with_capacity(config.listeners.len());
        let mut errors = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            let Some(settings) = &l.tls else {
                tls.push(None);
                continue;
            };
            let prev_tls =
                prev.and_then(|p| p.tls.iter().flatten().find(|t| t.configured == l.address));
            match ListenerTls::compile(i, l, settings, prev_tls) {
                Ok(t) => tls.push(Some(t)),
                Err(e) => errors.extend(e),
            }
        }
        let mut upstream_tls = Vec::with_capacity(config.upstreams.len());
        for (i, up) in config.upstreams.iter().enumerate() {
            match up
                .tls
                .as_ref()
                .map(|t| crate::tls::client::UpstreamTls::compile(i, t))
            {
                None => upstream_tls.push(None),
                Some(Ok(t)) => upstream_tls.push(Some(t)),
                Some(Err(e)) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let responders = config
            .routes
            .iter()
            .map(|r| match &r.action {
                Action::Respond(resp) => {
                    let mut head = BytesMut::new();
                    write::status_line(
                        &mut head,
                        resp.status,
                        write::reason(resp.status).as_bytes(),
                    );
                    head.extend_from_slice(b"Server: ringway\r\n");
                    for (name, value) in &resp.headers {
                        write::header(&mut head, name.as_bytes(), value.as_bytes());
                    }
                    write::content_length(&mut head, resp.body.len() as u64);
                    Some(Prebuilt {
                        status: resp.status,
                        head: head.freeze(),
                        body: Bytes::copy_from_slice(resp.body.as_bytes()),
                    })
                }
                Action::Upstream(_) => None,
            })
            .collect();
        Ok(Snapshot {
            generation,
            config,
            router,
            responders,
            policies,
            subject_headers: tls
                .iter()
                .flatten()
                .filter_map(|t| t.subject_header.clone())
                .collect(),
            tls,
            upstream_tls,
        })
    }
}

/// Checks `config` as a start or reload would: compiles it, loading its
/// key material and certificates (`ringway validate`).
pub fn check(config: Config) -> Result<(), ConfigErrors> {
    Snapshot::compile(config, 0, None, 1).map(|_| ())
}
