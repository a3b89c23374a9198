//! The open API connections: how many there are, which of them are idle, and the stream
//! wrapper that tells them apart.
//!
//! A connection is *busy* while a request is in flight on it (from the moment hyper has parsed
//! its head until the response body is dropped) or after it was hijacked (attach, exec start);
//! otherwise it is waiting for a request head: either idle between keep-alive requests (no byte
//! of the next head yet) or reading one. Only waiting connections expire or are evicted: a
//! streaming response (events, logs -f, wait, pull progress) is a request in flight and is never
//! cut.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::Limits;

/// "Not set" for the millisecond timestamps below.
const UNSET: u64 = u64::MAX;

/// Every open connection of every listener of the daemon, with the limits they share.
pub struct Connections {
    limits: Limits,
    epoch: Instant,
    next_id: AtomicU64,
    count: AtomicUsize,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Signalled when a connection closes (a slot is free again).
    freed: Notify,
}

/// What the registry and the connection's own task know about one connection.
pub(crate) struct ConnState {
    id: u64,
    /// Requests whose response has not been dropped yet.
    in_flight: AtomicUsize,
    /// Answered `101 Switching Protocols`: the stream belongs to an attach or exec session.
    hijacked: AtomicBool,
    /// Milliseconds since the registry's epoch of the last byte read or written.
    last_io: AtomicU64,
    /// When the connection last had no request in flight.
    idle_since: AtomicU64,
    /// When the first byte of the request head now being read arrived ([`UNSET`]: none yet).
    head_started: AtomicU64,
    /// Asks the connection's task to close it.
    pub(crate) close: Notify,
    /// Tells the connection's task that its deadline may have moved.
    pub(crate) wake: Notify,
}

impl Connections {
    pub fn new(limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            open: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Open connections right now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Beyond this many connections the listeners stop accepting until one closes: eviction
    /// is asynchronous (the evicted connection's task has to run to close it), so a burst may
    /// briefly overshoot [`Limits::max_connections`], never this.
    pub(crate) fn hard_cap(&self) -> usize {
        self.limits.max_connections + self.limits.max_connections / 32 + 1
    }

    /// Records a new connection. When that makes one too many, the waiting connection that has
    /// been quiet longest (possibly this new one) is asked to close.
    pub(crate) fn register(self: &Arc<Self>) -> Arc<ConnState> {
        let now = self.now_ms();
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            hijacked: AtomicBool::new(false),
            last_io: AtomicU64::new(now),
            idle_since: AtomicU64::new(now),
            // A new connection is reading its first request head from the start.
            head_started: AtomicU64::new(now),
            close: Notify::new(),
            wake: Notify::new(),
        });
        let count = {
            let mut open = super::lock(&self.open);
            open.insert(state.id, state.clone());
            self.count.fetch_add(1, Ordering::SeqCst) + 1
        };
        if count > self.limits.max_connections {
            self.evict_one();
        }
        state
    }

    fn release(&self, id: u64) {
        if super::lock(&self.open).remove(&id).is_some() {
            self.count.fetch_sub(1, Ordering::SeqCst);
            self.freed.notify_one();
        }
    }

    /// Asks the waiting (not busy) connection that has been quiet longest to close; false when
    /// every connection is busy.
    pub(crate) fn evict_one(&self) -> bool {
        let victim = super::lock(&self.open)
            .values()
            .filter(|c| c.waiting())
            .min_by_key(|c| c.last_io.load(Ordering::Relaxed))
            .cloned();
        match victim {
            Some(c) => {
                tracing::debug!(
                    conn = c.id,
                    "too many API connections: closing the oldest idle one"
                );
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Resolves when a connection has closed since the last call (or now, if one did).
    pub(crate) async fn freed(&self) {
        self.freed.notified().await
    }

    /// Asks every connection that is waiting for a request to close (daemon shutdown).
    pub(crate) fn close_waiting(&self) {
        for c in super::lock(&self.open).values().filter(|c| c.waiting()) {
            c.close.notify_one();
        }
    }
}

impl ConnState {
    /// Neither serving a request nor hijacked.
    fn waiting(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && !self.hijacked.load(Ordering::SeqCst)
    }

    /// When this connection is due to be closed (ms since the epoch), or `None` while it is busy:
    /// the header-read timeout from the first byte of a request head, else the idle timeout
    /// from the end of the last request.
    pub(crate) fn deadline(&self, limits: &Limits) -> Option<u64> {
        if !self.waiting() {
            return None;
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match self.head_started.load(Ordering::SeqCst) {
            UNSET => Some(
                self.idle_since
                    .load(Ordering::SeqCst)
                    .saturating_add(ms(limits.idle_timeout)),
            ),
            started => Some(started.saturating_add(ms(limits.header_read_timeout))),
        }
    }

    pub(crate) fn set_hijacked(&self) {
        self.hijacked.store(true, Ordering::SeqCst);
    }

    fn on_read(&self, now: u64) {
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::SeqCst) == 0
            && self
                .head_started
                .compare_exchange(UNSET, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            // The header-read deadline may be earlier than the idle one being slept on.
            self.wake.notify_one();
        }
    }
}

/// Held while a request is in flight; dropped with its response body.
pub(crate) struct RequestGuard {
    state: Arc<ConnState>,
    conns: Arc<Connections>,
}

impl RequestGuard {
    pub(crate) fn begin(state: &Arc<ConnState>, conns: &Arc<Connections>) -> RequestGuard {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        state.head_started.store(UNSET, Ordering::SeqCst);
        RequestGuard {
            state: state.clone(),
            conns: conns.clone(),
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.state.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.state
                .idle_since
                .store(self.conns.now_ms(), Ordering::SeqCst);
            self.state.head_started.store(UNSET, Ordering::SeqCst);
            self.state.wake.notify_one();
        }
    }
}

/// A connection's byte stream, recording its activity in [`ConnState`] and giving its slot back
/// when dropped — which happens when hyper closes the connection or, for a hijacked one, when
/// the attach or exec session ends.
pub(crate) struct TrackedIo<S> {
    inner: S,
    state: Arc<ConnState>,
    conns: Arc<Connections>,
}

impl<S> TrackedIo<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>, conns: Arc<Connections>) -> TrackedIo<S> {
        TrackedIo {
            inner,
            state,
            conns,
        }
    }
}

impl<S> Drop for TrackedIo<S> {
    fn drop(&mut self) {
        self.conns.release(self.state.id);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.on_read(this.conns.now_ms());
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.state
                .last_io
                .store(this.conns.now_ms(), Ordering::Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.state
                .last_io
                .store(this.conns.now_ms(), Ordering::Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            body_timeout: Duration::from_secs(60),
            max_connections: max,
        }
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let conns = Connections::new(limits(10));
        let c = conns.register();
        let start = c.head_started.load(Ordering::SeqCst);
        // A new connection is reading its first head: the header timeout runs.
        assert_eq!(c.deadline(conns.limits()), Some(start + 30_000));
        let guard = RequestGuard::begin(&c, &conns);
        assert_eq!(c.deadline(conns.limits()), None, "busy");
        drop(guard);
        // Idle between requests: the idle timeout, until the next head's first byte.
        let idle = c.idle_since.load(Ordering::SeqCst);
        assert_eq!(c.deadline(conns.limits()), Some(idle + 120_000));
        c.on_read(idle + 5);
        assert_eq!(c.deadline(conns.limits()), Some(idle + 5 + 30_000));
        c.set_hijacked();
        assert_eq!(c.deadline(conns.limits()), None, "hijacked");
    }

    #[test]
    fn the_quietest_waiting_connection_is_evicted() {
        let conns = Connections::new(limits(2));
        let a = conns.register();
        let b = conns.register();
        let _busy = RequestGuard::begin(&a, &conns);
        b.last_io.store(0, Ordering::Relaxed);
        assert_eq!(conns.count(), 2);
        std::thread::sleep(Duration::from_millis(5));
        // The third connection is one too many: b (waiting, quietest) is asked to close, not
        // a (busy).
        let c = conns.register();
        assert_eq!(conns.count(), 3);
        let notified = |s: &Arc<ConnState>| {
            let n = s.close.notified();
            tokio::pin!(n);
            n.as_mut().enable()
        };
        assert!(notified(&b));
        assert!(!notified(&a));
        assert!(!notified(&c));
        conns.release(b.id);
        assert_eq!(conns.count(), 2);
    }
}
