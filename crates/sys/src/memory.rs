//! Handing a long-lived process's unused memory back to the kernel.
//!
//! berth's two long-lived processes, the shim (one per container) and berthd, run a lot of code
//! in bursts (a container's creation; a `docker run`'s create, start and removal) and then sit
//! idle for a long time. What the burst left behind is free heap (which glibc keeps for later)
//! and the page mappings of the code it ran. [`release_unused`] gives both back; the
//! [`Quiescence`] detector tells berthd when a burst is over.

use std::time::Duration;

/// Gives back free heap pages (`malloc_trim`) and drops the page mappings of every private,
/// executable file mapping (the program's and the libraries' code). Those pages stay in the
/// page cache; any that are needed later come back on the next touch with a minor fault.
/// Writable and read-only data mappings are left alone: their contents may differ from the
/// file (relocations).
pub fn release_unused() {
    // SAFETY: malloc_trim only hands free heap memory back to the kernel.
    unsafe { libc::malloc_trim(0) };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, len) in code_mappings(&maps) {
        // SAFETY: the range is a private, read-only, executable file mapping of this process:
        // dropping its pages cannot change what a later access reads (it faults the same
        // bytes back in from the file, which the kernel keeps from being written while it is
        // executed), and no Rust object lives in it.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// `(start, length)` of the private `r-xp` mappings of files in a `/proc/<pid>/maps` text.
fn code_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, _offset, _dev, inode) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if perms != "r-xp" || inode == "0" {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let a = usize::from_str_radix(a, 16).ok()?;
            let b = usize::from_str_radix(b, 16).ok()?;
            (b > a).then(|| (a, b - a))
        })
        .collect()
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: `rusage` is plain data, for which all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct it is given, which outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Decides, from samples of the process's CPU time taken at a fixed period, when a burst of
/// work has ended: the first sample after some work whose period used less than `quiet` of
/// CPU. It answers once per burst, so an idle process is not trimmed over and over.
#[derive(Debug)]
pub struct Quiescence {
    quiet: Duration,
    last: Duration,
    busy_since_release: bool,
}

impl Quiescence {
    /// `now` is the CPU time at the start (the start-up itself counts as a burst).
    pub fn new(quiet: Duration, now: Duration) -> Self {
        Quiescence {
            quiet,
            last: now,
            busy_since_release: now > Duration::ZERO,
        }
    }

    /// Takes the CPU time at the end of a period; true when this is the moment to release.
    pub fn sample(&mut self, now: Duration) -> bool {
        let used = now.saturating_sub(self.last);
        self.last = now;
        if used >= self.quiet {
            self.busy_since_release = true;
            return false;
        }
        std::mem::take(&mut self.busy_since_release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_mappings_are_private_executable_file_mappings() {
        let maps = "55d0a000-55d0b000 r--p 00000000 fe:01 123 /bin/shim\n\
                    55d0b000-55d0f000 r-xp 00001000 fe:01 123 /bin/shim\n\
                    55d10000-55d11000 rw-p 00005000 fe:01 123 /bin/shim\n\
                    7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]\n\
                    7f000000-7f002000 r-xs 00000000 fe:01 77 /dev/shm/x\n";
        assert_eq!(code_mappings(maps), vec![(0x55d0b000, 0x4000)]);
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        let rss_file = || -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            s.lines()
                .find_map(|l| l.strip_prefix("RssFile:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
                .unwrap()
        };
        let before = rss_file();
        release_unused();
        let after = rss_file();
        assert!(after < before, "file-backed RSS {before} kB -> {after} kB");
        // Code and data are intact after the pages come back.
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(v.iter().sum::<u64>(), 5050);
        assert_eq!(format!("{:?}", Some("x")), "Some(\"x\")");
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_time() > before, "{x}");
    }

    #[test]
    fn quiescence_answers_once_per_burst() {
        let ms = Duration::from_millis;
        let mut q = Quiescence::new(ms(5), ms(40));
        // The start-up was a burst: the first quiet period releases.
        assert!(q.sample(ms(41)));
        // Idle: nothing more.
        assert!(!q.sample(ms(42)));
        assert!(!q.sample(ms(43)));
        // A burst spanning two periods, then quiet: one release, at its end.
        assert!(!q.sample(ms(100)));
        assert!(!q.sample(ms(180)));
        assert!(q.sample(ms(181)));
        assert!(!q.sample(ms(182)));
        // Work under the threshold spread over periods is not a burst.
        assert!(!q.sample(ms(186)));
    }

    #[test]
    fn a_process_that_never_worked_is_not_released() {
        let mut q = Quiescence::new(Duration::from_millis(5), Duration::ZERO);
        assert!(!q.sample(Duration::from_millis(1)));
    }
}
