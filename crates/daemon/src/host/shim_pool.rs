//! Shims spawned ahead of need. Spawning `berth-shim` (fork, exec, the dynamic loader, the
//! Rust runtime) costs ~2.5 ms before it even reads its config; berthd keeps a few
//! `berth-shim --pooled` processes waiting instead (see `berth_shim_protocol::PooledShim`),
//! and a start hands one its config path. A pooled shim exits at EOF on its stdin, which
//! berthd holds: when berthd exits, even by SIGKILL, its pooled shims go with it.

use std::path::{Path, PathBuf};

use berth_shim_protocol::{PooledShim, StartError};

use super::pool::{Pool, Poolable};

impl Poolable for PooledShim {
    fn usable(&mut self) -> bool {
        !self.has_exited()
    }
}

/// The pooled shims of one binary.
pub(crate) struct ShimPool {
    binary: PathBuf,
    pool: Pool<PooledShim>,
    /// The shims are spawned at the lowest priority (see [`Pool::new`]) and given the
    /// launching thread's back when handed out. Only where berthd may lower a nice value
    /// again (`CAP_SYS_NICE`, not a rootless daemon).
    background: bool,
}

impl ShimPool {
    /// Keeps up to `size` shims of `binary` waiting (0: none, every start spawns its own);
    /// `background`: spawned at the lowest priority (see the field).
    pub(crate) fn new(binary: &Path, size: usize, background: bool) -> ShimPool {
        let b = binary.to_path_buf();
        ShimPool {
            binary: binary.to_path_buf(),
            pool: Pool::new("shim-pool", size, background, move || PooledShim::spawn(&b)),
            background,
        }
    }

    /// Launches the shim `binary` with `config` as `berth_shim_protocol::launch` does,
    /// through a pooled shim when one of that binary is ready, else (or when the pooled one
    /// died before it took the config) a freshly spawned one.
    pub(crate) fn launch(&self, binary: &Path, config: &Path) -> Result<u32, StartError> {
        if binary == self.binary {
            if let Some(shim) = self.pool.take().filter(|s| self.prioritize(s)) {
                match shim.hand_over(config) {
                    Ok(handed) => return handed.status(),
                    Err(e) => tracing::debug!("pooled shim not usable ({e}): spawning one"),
                }
            }
        }
        berth_shim_protocol::launch(binary, config)
    }

    /// Gives a background-spawned shim the calling thread's priority before it creates a
    /// container; false (the shim is dropped, a fresh one spawned) when that fails.
    fn prioritize(&self, shim: &PooledShim) -> bool {
        if !self.background {
            return true;
        }
        let Some(pid) = shim.pid() else { return false };
        // SAFETY: plain syscalls; getpriority's -1 is told from an error by errno.
        let res = unsafe {
            *libc::__errno_location() = 0;
            let mine = libc::getpriority(libc::PRIO_PROCESS, libc::gettid().cast_unsigned());
            if mine == -1 && *libc::__errno_location() != 0 {
                -1
            } else {
                libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, mine)
            }
        };
        if res != 0 {
            tracing::debug!(
                "giving a pooled shim the daemon's priority: {}",
                std::io::Error::last_os_error()
            );
        }
        res == 0
    }

    /// Ends every waiting shim and stops refilling (graceful shutdown).
    pub(crate) fn drain(&self) {
        self.pool.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::pool::until;
    use std::time::Duration;

    /// A stand-in for `berth-shim`: `--config <n>` and `--pooled` (reading `<n>`) both report
    /// `<n>` as the init pid, plus 1000 when pooled, so a test sees which path ran. Records
    /// its pid in `<dir>/pids` when pooled.
    fn fake_shim(dir: &Path) -> PathBuf {
        let script = dir.join("fake-shim");
        let body = format!(
            r#"#!/bin/sh
if [ "$1" = --pooled ]; then
  echo $$ >> {pids}
  read p || exit 0
  echo "{{\"ok\":true,\"pid\":$((p + 1000))}}"
else
  echo "{{\"ok\":true,\"pid\":$2}}"
fi
"#,
            pids = dir.join("pids").display()
        );
        std::fs::write(&script, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn pooled_pids(dir: &Path) -> Vec<u32> {
        std::fs::read_to_string(dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// [`ShimPool::launch`], again while the exec fails with `ETXTBSY`: a script just written
    /// stays busy while a child another test thread forked meanwhile still holds it open.
    fn launch(pool: &ShimPool, shim: &Path, config: &str) -> Result<u32, StartError> {
        for _ in 0..100 {
            match pool.launch(shim, Path::new(config)) {
                Err(e) if e.message.contains("Text file busy") => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                res => return res,
            }
        }
        panic!("{} stayed busy", shim.display());
    }

    fn running(pid: u32) -> bool {
        // A zombie counts as gone only once reaped: its /proc entry stays until then.
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn launches_through_pooled_shims_and_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let shim = fake_shim(dir.path());
        let pool = ShimPool::new(&shim, 1, true);
        until("a pooled shim waits", || pooled_pids(dir.path()).len() == 1);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(launch(&pool, &shim, "7"), Ok(1007), "pooled");
        // Another binary never gets a pooled shim of the first.
        let other = dir.path().join("other-shim");
        std::fs::copy(&shim, &other).unwrap();
        assert_eq!(launch(&pool, &other, "8"), Ok(8), "fresh");

        // The waiting shim dies: the next launch spawns its own, and the dead one is reaped.
        until("refilled", || pooled_pids(dir.path()).len() == 2);
        let dead = pooled_pids(dir.path())[1];
        let killed = std::process::Command::new("kill")
            .args(["-9", &dead.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        until("the killed shim exited", || {
            std::fs::read_to_string(format!("/proc/{dead}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        });
        let r = launch(&pool, &shim, "9");
        assert!(r == Ok(9) || r == Ok(1009), "{r:?}");
        until("the dead shim reaped", || !running(dead));
        drop(pool);
    }

    #[test]
    fn drain_ends_every_waiting_shim() {
        let dir = tempfile::tempdir().unwrap();
        let shim = fake_shim(dir.path());
        let pool = ShimPool::new(&shim, 2, true);
        until("two pooled shims", || pooled_pids(dir.path()).len() == 2);
        let pids = pooled_pids(dir.path());
        pool.drain();
        for pid in pids {
            assert!(!running(pid), "pooled shim {pid} left behind");
        }
        assert_eq!(launch(&pool, &shim, "5"), Ok(5), "no pool: fresh");
    }

    #[test]
    fn size_zero_spawns_nothing_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let shim = fake_shim(dir.path());
        let pool = ShimPool::new(&shim, 0, true);
        std::thread::sleep(Duration::from_millis(50));
        assert!(pooled_pids(dir.path()).is_empty());
        assert_eq!(launch(&pool, &shim, "3"), Ok(3));
    }
}
