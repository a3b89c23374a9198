//! Keep-alive connections a [`crate::Client`] reuses when asked to
//! ([`crate::Client::reuse_connections`]).
//!
//! A connection goes back to the pool as soon as its response head has arrived; it is handed out
//! again only once hyper says it is ready for another request, that is once that response's body
//! has been read to its end. A connection still streaming a response (`wait`, events, logs)
//! stays in the pool, busy, and one that the daemon closed is dropped. Hijacked attach and exec
//! connections never enter it: they belong to their session.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::http1::SendRequest;

/// The request side of an HTTP/1.1 connection to the daemon.
pub(crate) type Sender = SendRequest<UnsyncBoxBody<Bytes, std::io::Error>>;

/// Connections kept at most; past it a returned connection is let go (it finishes its response
/// and closes).
const MAX_KEPT: usize = 8;

#[derive(Default)]
pub(crate) struct Pool {
    conns: Mutex<Vec<Sender>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.lock().len();
        f.debug_struct("Pool").field("connections", &n).finish()
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection ready for a request now, if there is one. Closed connections are dropped
    /// on the way; busy ones stay.
    pub(crate) fn checkout(&self) -> Option<Sender> {
        let mut conns = self.lock();
        conns.retain(|s| !s.is_closed());
        let i = conns.iter().position(|s| s.is_ready())?;
        Some(conns.swap_remove(i))
    }

    /// Keeps a connection whose response head has arrived for a later request.
    pub(crate) fn put(&self, sender: Sender) {
        let mut conns = self.lock();
        conns.retain(|s| !s.is_closed());
        if !sender.is_closed() && conns.len() < MAX_KEPT {
            conns.push(sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::Frame;
    use hyper_util::rt::TokioIo;
    use tokio::net::UnixListener;

    use crate::{Body, Client, Host, Query};

    /// A daemon stand-in on a unix socket that counts the connections it accepts. `/stream`
    /// answers a body that never ends; `/close` answers and closes its connection.
    async fn server() -> (tempfile::TempDir, Host, Arc<AtomicUsize>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((io, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: http::Request<_>| async move {
                        let body = if req.uri().path().ends_with("/stream") {
                            let s = futures_util::stream::pending::<
                                Result<Frame<Bytes>, std::io::Error>,
                            >();
                            BodyExt::boxed_unsync(StreamBody::new(s))
                        } else {
                            Full::new(Bytes::from_static(b"{}"))
                                .map_err(|never| match never {})
                                .boxed_unsync()
                        };
                        let mut resp = http::Response::new(body);
                        if req.uri().path().ends_with("/close") {
                            resp.headers_mut()
                                .insert(http::header::CONNECTION, "close".parse().unwrap());
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(io), svc)
                        .await;
                });
            }
        });
        let host = Host::parse(&format!("unix://{}", path.display())).unwrap();
        (dir, host, accepted)
    }

    async fn get(c: &Client, path: &str) {
        let _: serde_json::Value = c.get_json(path, &Query::new()).await.unwrap();
    }

    #[tokio::test]
    async fn requests_share_a_connection_only_when_asked_to() {
        let (_dir, host, accepted) = server().await;
        let plain = Client::new(host.clone());
        get(&plain, "/a").await;
        get(&plain, "/b").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        let (_dir, host, accepted) = server().await;
        let c = Client::new(host).reuse_connections();
        c.ping().await.unwrap();
        get(&c, "/a").await;
        let _ = c.post("/b", &Query::new(), Body::Empty).await.unwrap();
        // Clones share the connections.
        get(&c.clone(), "/c").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_streaming_a_response_is_not_handed_out() {
        let (_dir, host, accepted) = server().await;
        let c = Client::new(host).reuse_connections();
        get(&c, "/a").await;
        let streaming = c
            .send(
                http::Method::GET,
                "/stream",
                &Query::new(),
                Body::Empty,
                &[],
            )
            .await
            .unwrap();
        get(&c, "/b").await;
        get(&c, "/c").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        drop(streaming);
    }

    #[tokio::test]
    async fn a_connection_the_daemon_closed_is_replaced() {
        let (_dir, host, accepted) = server().await;
        let c = Client::new(host).reuse_connections();
        get(&c, "/close").await;
        get(&c, "/a").await;
        get(&c, "/b").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
