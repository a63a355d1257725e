//! The API listener: accepts connections within limits and serves HTTP/1.1
//! on them with timeouts, so that no caller, signed or not, can hold
//! connections that others need.
//!
//! - At most `max` connections at once, and at most `per_peer` from one
//!   address; one over either is closed as soon as it is accepted.
//! - A request's headers must arrive within `header_timeout`, counted from
//!   the moment the connection waits for them; so an idle kept-alive
//!   connection is closed after the same time. (The body has its own
//!   deadline, in `api::read_body`.)
//! - On shutdown the listener stops accepting, and connections finish the
//!   request in hand and close.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How long shutdown waits for connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(30);

/// The connections open now, in all and per peer address.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Mutex<Open>>,
    max: usize,
    per_peer: usize,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// One open connection's place; given back when dropped.
pub struct Slot {
    conns: Connections,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.conns.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.by_peer.remove(&self.peer);
            }
        }
    }
}

impl Connections {
    pub fn new(max: usize, per_peer: usize) -> Self {
        Self {
            inner: Arc::default(),
            max,
            per_peer,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `peer`, if both limits allow one.
    pub fn open(&self, peer: IpAddr) -> Option<Slot> {
        let mut open = self.lock();
        let from_peer = open.by_peer.get(&peer).copied().unwrap_or(0);
        if open.total >= self.max || from_peer >= self.per_peer {
            return None;
        }
        open.total += 1;
        *open.by_peer.entry(peer).or_insert(0) += 1;
        Some(Slot {
            conns: self.clone(),
            peer,
        })
    }

    /// How many connections are open, and whether no more can be.
    pub fn load(&self) -> (usize, bool) {
        let open = self.lock();
        (open.total, open.total >= self.max)
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits up
/// to [`DRAIN`] for connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    conns: Connections,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = conns.open(peer.ip()) else {
            metrics::counter!("sesame_connections_refused_total").increment(1);
            tracing::debug!(%peer, "connection refused: too many connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Each request knows its peer (`ConnectInfo`), as axum's own
        // server would tell it.
        let inner = TowerToHyperService::new(router.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            hyper::service::Service::call(&inner, req)
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_in_all_and_per_peer() {
        let c = Connections::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = c.open(a).unwrap();
        let _a2 = c.open(a).unwrap();
        assert!(c.open(a).is_none(), "per peer");
        let b1 = c.open(b).unwrap();
        assert!(c.open(b).is_none(), "in all");
        assert_eq!(c.load(), (3, true));
        drop(a1);
        assert!(c.open(a).is_some(), "a place was given back");
        drop(b1);
        assert_eq!(c.lock().by_peer.get(&b), None, "no empty entries kept");
    }
}
