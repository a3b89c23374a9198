//! A small bounded pool of things made ahead of need (pre-spawned shims, prepared container
//! directories, network namespaces), so that the start path takes one instead of paying for
//! making it. One background thread per pool keeps it full: it makes an item whenever fewer
//! than `capacity` are ready, and between refills looks over the ready ones every
//! [`PRUNE_EVERY`] and drops those no longer usable (a pooled process that exited is reaped
//! that way). Taking never makes anything; an empty pool answers `None` and the caller makes
//! its own.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the filler looks for ready items that died while the pool is full.
const PRUNE_EVERY: Duration = Duration::from_secs(2);
/// The filler's pause after a failed make, doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a pool holds.
pub(crate) trait Poolable: Send + 'static {
    /// Whether the item can still be handed out (a pooled process that exited cannot).
    fn usable(&mut self) -> bool;
}

pub(crate) struct Pool<T: Poolable> {
    shared: Arc<Shared<T>>,
    filler: Mutex<Option<JoinHandle<()>>>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item is taken and when the pool closes.
    wake: Condvar,
    capacity: usize,
    prune_every: Duration,
}

struct State<T> {
    ready: Vec<T>,
    closed: bool,
}

impl<T: Poolable> Pool<T> {
    /// A pool of up to `capacity` items made by `make` on a thread named `name`; capacity 0
    /// makes nothing (and starts no thread).
    ///
    /// The filler runs at the lowest CPU priority (nice 19), as does what it spawns: on a busy
    /// host the making of spares yields to the starts they are for. A pool whose items are
    /// processes that must run at the daemon's priority restores it when it hands one out
    /// (see `shim_pool.rs`), or passes `background: false`.
    pub(crate) fn new(
        name: &str,
        capacity: usize,
        background: bool,
        make: impl FnMut() -> std::io::Result<T> + Send + 'static,
    ) -> Pool<T> {
        Self::with_prune_interval(name, capacity, PRUNE_EVERY, background, make)
    }

    fn with_prune_interval(
        name: &str,
        capacity: usize,
        prune_every: Duration,
        background: bool,
        make: impl FnMut() -> std::io::Result<T> + Send + 'static,
    ) -> Pool<T> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: Vec::with_capacity(capacity),
                closed: false,
            }),
            wake: Condvar::new(),
            capacity,
            prune_every,
        });
        let filler = if capacity == 0 {
            None
        } else {
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    if background {
                        lower_priority();
                    }
                    fill(&s, make)
                });
            match spawned {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!("starting the {name} pool: {e}");
                    None
                }
            }
        };
        Pool {
            shared,
            filler: Mutex::new(filler),
        }
    }

    /// A ready, usable item (the filler makes another in the background), or `None`.
    pub(crate) fn take(&self) -> Option<T> {
        let mut st = lock(&self.shared.state);
        let mut found = None;
        while let Some(mut item) = st.ready.pop() {
            if item.usable() {
                found = Some(item);
                break;
            }
        }
        drop(st);
        self.shared.wake.notify_all();
        found
    }

    /// How many items are ready.
    #[cfg(test)]
    pub(crate) fn ready(&self) -> usize {
        lock(&self.shared.state).ready.len()
    }

    /// Closes the pool: the filler stops (after the item it may be making, which is
    /// dropped) and every ready item is dropped. Later takes answer `None`.
    pub(crate) fn drain(&self) {
        let items = {
            let mut st = lock(&self.shared.state);
            st.closed = true;
            std::mem::take(&mut st.ready)
        };
        self.shared.wake.notify_all();
        drop(items);
        if let Some(h) = lock(&self.filler).take() {
            let _ = h.join();
        }
    }
}

impl<T: Poolable> Drop for Pool<T> {
    fn drop(&mut self) {
        self.drain();
    }
}

/// The filler thread: keeps `capacity` usable items ready until the pool closes.
fn fill<T: Poolable>(shared: &Shared<T>, mut make: impl FnMut() -> std::io::Result<T>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        {
            let mut st = lock(&shared.state);
            loop {
                if st.closed {
                    return;
                }
                st.ready.retain_mut(|item| item.usable());
                if st.ready.len() < shared.capacity {
                    break;
                }
                st = wait(shared, st, shared.prune_every);
            }
        }
        // Made without the lock: a take never waits for a spawn.
        match make() {
            Ok(item) => {
                backoff = MIN_BACKOFF;
                let mut st = lock(&shared.state);
                if st.closed {
                    drop(st);
                    drop(item);
                    return;
                }
                st.ready.push(item);
            }
            Err(e) => {
                tracing::warn!("making a pooled item: {e} (retrying in {backoff:?})");
                let st = lock(&shared.state);
                if st.closed {
                    return;
                }
                drop(wait(shared, st, backoff));
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The calling thread (and what it forks from now on) at nice 19. Best effort.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread's own id.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid.cast_unsigned(), 19)
    };
    if rc != 0 {
        tracing::debug!(
            "lowering a pool filler's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn wait<'a, T>(
    shared: &'a Shared<T>,
    st: MutexGuard<'a, State<T>>,
    timeout: Duration,
) -> MutexGuard<'a, State<T>> {
    match shared.wake.wait_timeout(st, timeout) {
        Ok((st, _)) => st,
        Err(p) => p.into_inner().0,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    crate::lock(m)
}

/// Waits (up to 10 s) until `f` holds, for the tests of what pools make in the background.
#[cfg(test)]
pub(crate) fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A pooled item whose liveness the test controls; counts its drops.
    struct Item {
        n: usize,
        alive: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
    }

    impl Poolable for Item {
        fn usable(&mut self) -> bool {
            self.alive.load(Ordering::SeqCst)
        }
    }

    impl Drop for Item {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Clone, Default)]
    struct Maker {
        made: Arc<AtomicUsize>,
        dropped: Arc<AtomicUsize>,
        /// The next this many makes fail.
        fail: Arc<AtomicUsize>,
        /// Liveness flags of the items made, in order.
        alive: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    }

    impl Maker {
        fn make(&self) -> std::io::Result<Item> {
            let failing = self.fail.load(Ordering::SeqCst);
            if failing > 0 {
                self.fail.store(failing - 1, Ordering::SeqCst);
                return Err(std::io::Error::other("cannot make"));
            }
            let alive = Arc::new(AtomicBool::new(true));
            lock(&self.alive).push(alive.clone());
            Ok(Item {
                n: self.made.fetch_add(1, Ordering::SeqCst),
                alive,
                dropped: self.dropped.clone(),
            })
        }

        fn pool(&self, capacity: usize) -> Pool<Item> {
            let m = self.clone();
            Pool::with_prune_interval(
                "test-pool",
                capacity,
                Duration::from_millis(20),
                true,
                move || m.make(),
            )
        }

        fn made(&self) -> usize {
            self.made.load(Ordering::SeqCst)
        }

        fn dropped(&self) -> usize {
            self.dropped.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn fills_up_to_its_capacity_and_no_more() {
        let m = Maker::default();
        let pool = m.pool(2);
        until("full", || pool.ready() == 2);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(m.made(), 2, "bounded");
        assert_eq!(pool.ready(), 2);
    }

    #[test]
    fn a_take_is_refilled_in_the_background() {
        let m = Maker::default();
        let pool = m.pool(2);
        until("full", || pool.ready() == 2);
        let a = pool.take().expect("a ready item");
        let b = pool.take().expect("a second one");
        assert_ne!(a.n, b.n);
        until("refilled", || pool.ready() == 2);
        assert_eq!(m.made(), 4);
        assert_eq!(m.dropped(), 0, "taken items are the caller's");
    }

    #[test]
    fn an_empty_pool_answers_none() {
        let m = Maker::default();
        let pool = m.pool(0);
        assert!(pool.take().is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(m.made(), 0, "capacity 0 makes nothing");

        // Making fails: nothing is ready, the caller makes its own; the filler retries.
        m.fail.store(2, Ordering::SeqCst);
        let pool = m.pool(1);
        assert!(pool.take().is_none());
        until("made after the failures", || pool.ready() == 1);
        assert_eq!(m.fail.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_dead_item_is_never_handed_out() {
        let m = Maker::default();
        let pool = m.pool(1);
        until("full", || pool.ready() == 1);
        lock(&m.alive)[0].store(false, Ordering::SeqCst);
        // Either the take skips it or the filler pruned it first: never handed out.
        if let Some(item) = pool.take() {
            assert_eq!(item.n, 1, "a fresh one");
        }
        until("the dead one dropped", || m.dropped() >= 1);
    }

    #[test]
    fn a_dead_item_is_pruned_while_the_pool_is_full() {
        let m = Maker::default();
        let pool = m.pool(2);
        until("full", || pool.ready() == 2);
        lock(&m.alive)[1].store(false, Ordering::SeqCst);
        until("pruned and replaced", || m.dropped() == 1 && m.made() == 3);
        until("full again", || pool.ready() == 2);
    }

    #[test]
    fn drain_drops_everything_and_stops_the_filler() {
        let m = Maker::default();
        let pool = m.pool(3);
        until("full", || pool.ready() == 3);
        pool.drain();
        assert_eq!(m.dropped(), 3);
        assert_eq!(pool.ready(), 0);
        assert!(pool.take().is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(m.made(), 3, "nothing made after the drain");
        drop(pool);
        assert_eq!(m.dropped(), 3);
    }
}
