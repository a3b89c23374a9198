//! Bodies around the router: a request body that must keep arriving, and a response body that
//! keeps its request counted as in flight until hyper is done with it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use super::conns::RequestGuard;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails when no byte of it arrives for `timeout` while the handler waits
/// for one: a client that stops half-way through a body cannot hold the connection (and the
/// handler) forever. Time the handler spends elsewhere does not count.
pub(crate) struct ProgressBody {
    inner: Incoming,
    timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
}

impl ProgressBody {
    pub(crate) fn new(inner: Incoming, timeout: Duration) -> ProgressBody {
        ProgressBody {
            inner,
            timeout,
            stall: None,
        }
    }
}

impl HttpBody for ProgressBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stall = None;
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stall.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(format!(
                        "no data received for {}s",
                        timeout.as_secs_f64()
                    )
                    .into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding its request's [`RequestGuard`]: hyper drops it when the response
/// has been written (or the client went away), which ends the request.
pub(crate) struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl GuardedBody {
    pub(crate) fn new(inner: Body, guard: RequestGuard) -> GuardedBody {
        GuardedBody {
            inner,
            _guard: guard,
        }
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
