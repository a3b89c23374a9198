//! berthd hands its unused memory back when a burst of work is over.
//!
//! A `docker run` runs a lot of berthd's code (the API layer, the image store, the bundle and
//! network setup, the shim client) and grows its heap, and then the daemon may sit idle for
//! hours. Once a second berthd looks at how much CPU it used; the first quiet second after some
//! work, it gives back its free heap and the page mappings of its code (see
//! [`berth_sys::memory::release_unused`]), as each shim does after its container started.

use std::time::Duration;

use berth_sys::memory::{cpu_time, Quiescence};

/// How often the CPU time is sampled.
const PERIOD: Duration = Duration::from_secs(1);
/// Less CPU than this in a period is quiet (1 %): timers and the odd health check stay under it.
const QUIET: Duration = Duration::from_millis(10);

/// Runs on the daemon's runtime until it stops.
pub fn spawn() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut quiescence = Quiescence::new(QUIET, cpu_time());
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if quiescence.sample(cpu_time()) {
                tracing::trace!("idle: releasing unused memory");
                berth_sys::memory::release_unused();
            }
        }
    })
}
