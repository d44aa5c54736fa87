//! Accepting connections: one accept loop per listener per worker, and
//! one task per connection (plain, or TLS after its handshake) whose panic
//! is caught, counted and closes that connection only.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::net::TcpListener;

use crate::proxy::conn;
use crate::rt::panic::{catch_unwind, CatchUnwind};
use crate::tls::stream::TlsStream;
use crate::worker::conn::TlsInfo;
use crate::worker::generation::WorkerTls;
use crate::worker::{Accepting, ListenerState, Worker};

pub(crate) fn start_accepting(w: &Rc<Worker>, configured: SocketAddr, listener: TcpListener) {
    if w.shutdown.is_fired() {
        return;
    }
    let state = Rc::new(ListenerState {
        configured,
        closing: Default::default(),
    });
    let listener = Rc::new(listener);
    let task = monoio::spawn(accept_loop(
        w.clone(),
        listener.clone(),
        state.clone(),
        configured,
    ));
    w.add_accepting(Accepting {
        configured,
        state,
        listener,
        task,
    });
}

async fn accept_loop(
    w: Rc<Worker>,
    listener: Rc<TcpListener>,
    state: Rc<ListenerState>,
    configured: SocketAddr,
) {
    loop {
        let accepted = listener.accept().await;
        if state.closing.is_fired() {
            // Ended by `Accepting::close`. A connection accepted in the
            // same instant is closed unanswered, as a listen queue is.
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                w.stats.connections_accepted.inc();
                if !w.peers.open_client(w.current().limits().max_connections) {
                    // At `max-connections`: closed at once, as a full
                    // listen queue would, and counted.
                    w.stats.connections_refused.inc();
                    tracing::debug!(worker = w.id, %peer, "max-connections reached; connection closed");
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                // Plain or TLS as the current generation says: a reload may
                // turn TLS on or off for this address.
                match w.current().tls_for(configured) {
                    None => {
                        let serving = conn::serve(w.clone(), stream, peer, state.clone(), None);
                        monoio::spawn(connection(w.clone(), peer, serving));
                    }
                    Some(tls) => {
                        let serving = tls_connection(w.clone(), stream, peer, state.clone(), tls);
                        monoio::spawn(connection(w.clone(), peer, serving));
                    }
                }
            }
            Err(e) => {
                w.stats.accept_errors.inc();
                tracing::warn!(worker = w.id, error = %e, "accept failed");
                // Out of descriptors: back off instead of spinning.
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One connection task: a panic inside is caught here, counted and logged,
/// and only this connection is lost. Written by hand so the (large)
/// connection future is stored once, not once as an argument and again as
/// the future being awaited.
fn connection<F: Future<Output = ()>>(
    w: Rc<Worker>,
    peer: SocketAddr,
    serving: F,
) -> Connection<F> {
    w.stats.connections_open.inc();
    Connection {
        serving: catch_unwind(serving),
        w,
        peer,
    }
}

pin_project_lite::pin_project! {
    struct Connection<F> {
        #[pin]
        serving: CatchUnwind<F>,
        w: Rc<Worker>,
        peer: SocketAddr,
    }
}

impl<F: Future<Output = ()>> Future for Connection<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let Poll::Ready(result) = this.serving.poll(cx) else {
            return Poll::Pending;
        };
        let w = this.w;
        w.stats.connections_open.dec();
        w.peers.close_client();
        if let Err(panic) = result {
            w.stats.panics.inc();
            let msg = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("non-string panic");
            tracing::error!(worker = w.id, peer = %this.peer, panic = msg, "panic while serving a connection; connection closed");
        }
        Poll::Ready(())
    }
}

/// A TLS connection: the handshake (within the listener's timeout,
/// failures counted by reason), then HTTP over it.
async fn tls_connection(
    w: Rc<Worker>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    listener: Rc<ListenerState>,
    tls: WorkerTls,
) {
    let Ok(session) = rustls::ServerConnection::new(tls.config.clone()) else {
        return;
    };
    let mut io = TlsStream::new(stream, session);
    let deadline = std::time::Instant::now() + tls.handshake_timeout;
    let failure = match w.deadlines.within(deadline, io.handshake()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(crate::tls::handshake_failure(&e)),
        Err(_) => Some(crate::stats::HandshakeFailure::Timeout),
    };
    if let Some(f) = failure {
        w.stats.tls_failure(f);
        tracing::debug!(%peer, reason = ?f, "TLS handshake failed");
        return;
    }
    w.stats.tls_handshakes.inc();
    match io.conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => w.stats.tls_handshakes_v13.inc(),
        Some(rustls::ProtocolVersion::TLSv1_2) => w.stats.tls_handshakes_v12.inc(),
        _ => {}
    }
    if io.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        w.stats.tls_resumed.inc();
    }
    let snap = &w.current().snap;
    let logging = snap.access_log.is_some() || snap.keeps_sni;
    let info = TlsInfo::of(&io.conn, tls.subject_header.as_deref(), logging);
    conn::serve(w, io, peer, listener, Some(info)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle connection holds is its task: the connection future
    /// and its bookkeeping, stored once (the answering state is boxed
    /// apart and freed when idle; `tests/idle_memory.rs` measures that).
    #[test]
    fn an_idle_connection_task_is_small() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let config = ringway_config::Config::from_toml_str(ringway_config::DEFAULT_CONFIG)
                .expect("default config");
            let snap = std::sync::Arc::new(
                crate::snapshot::Snapshot::compile(config, 1, None, 1, &Default::default())
                    .expect("compiles"),
            );
            let g = crate::worker::Generation::new(0, snap, None);
            let peers = crate::worker::link::Peers::default();
            let w = Rc::new(Worker::new(
                0,
                Default::default(),
                g,
                Default::default(),
                peers,
            ));
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = l.local_addr().expect("addr");
            let stream = monoio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let state = Rc::new(ListenerState {
                configured: addr,
                closing: Default::default(),
            });
            let task = connection(w.clone(), addr, conn::serve(w, stream, addr, state, None));
            let size = std::mem::size_of_val(&task);
            assert!(size <= 1024, "an idle connection's task is {size} bytes");
        });
    }
}
