//! The crash-consistency soak (issue 16): workers drive a private berthd with the docker
//! CLI (containers created, started and removed, volumes, networks, image tags and removals,
//! builds) while berthd is SIGKILLed at random points. A ledger records what berthd
//! acknowledged; after each restart every acknowledged create must exist and every
//! acknowledged delete must be gone, no build step container may survive, and every
//! container must inspect.
//!
//! `BERTH_SOAK_SECONDS` bounds it (40 s by default, the CI run), `BERTH_SOAK_WORKERS` sets
//! the workers (4); `scripts/soak.sh` runs it on demand for longer.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_tests::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Container,
    Volume,
    Network,
    Image,
}

/// What berthd's answers say about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Present,
    Absent,
    /// The operation failed (berthd killed during it): either may hold.
    Unknown,
}

#[derive(Default)]
struct Ledger {
    objects: BTreeMap<(Kind, String), Known>,
    /// Which of the four spare subnets a network holds.
    subnets: [Option<String>; 4],
    acked: usize,
    failed: usize,
}

/// A small xorshift generator: the soak needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(1);
    t ^ (u64::from(std::process::id()) << 32)
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Soak {
    d: RwLock<Daemon>,
    ledger: Mutex<Ledger>,
    stop: AtomicBool,
    seq: AtomicUsize,
}

impl Soak {
    fn record(&self, kind: Kind, name: &str, state: Known) {
        let mut l = lock(&self.ledger);
        if state == Known::Unknown {
            l.failed += 1;
        } else {
            l.acked += 1;
        }
        l.objects.insert((kind, name.to_string()), state);
    }

    /// The worker's objects of `kind` that may exist (to delete one of them).
    fn candidates(&self, kind: Kind, prefix: &str) -> Vec<String> {
        lock(&self.ledger)
            .objects
            .iter()
            .filter(|((k, n), s)| *k == kind && n.starts_with(prefix) && **s != Known::Absent)
            .map(|((_, n), _)| n.clone())
            .collect()
    }

    /// One operation; the daemon is read-locked for its whole length, so a check never
    /// sees an answer berthd gave that the ledger does not have yet.
    fn step(&self, w: usize, rng: &mut Rng, ctx: &std::path::Path) {
        let d = self.d.read().unwrap_or_else(|p| p.into_inner());
        let prefix = format!("soak{w}-");
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}{n}");
        let create = |kind: Kind, name: &str, args: &[&str]| {
            let out = d.docker(args);
            let state = if out.status.success() {
                Known::Present
            } else {
                Known::Unknown
            };
            self.record(kind, name, state);
            out.status.success()
        };
        let delete = |kind: Kind, name: &str, args: &[&str]| {
            let out = d.docker(args);
            let err = stderr(&out).to_lowercase();
            let state =
                if out.status.success() || err.contains("no such") || err.contains("not found") {
                    Known::Absent
                } else {
                    Known::Unknown
                };
            self.record(kind, name, state);
            state == Known::Absent
        };
        let pick = |kind: Kind, rng: &mut Rng| {
            let c = self.candidates(kind, &prefix);
            (!c.is_empty()).then(|| c[usize::try_from(rng.below(c.len() as u64)).unwrap()].clone())
        };
        match rng.below(12) {
            0 => {
                create(
                    Kind::Container,
                    &name,
                    &["create", "--name", &name, "busybox", "sleep", "1000"],
                );
            }
            1 | 2 => {
                create(
                    Kind::Container,
                    &name,
                    &["run", "-d", "--name", &name, "busybox", "sleep", "1000"],
                );
            }
            3 | 4 => {
                if let Some(c) = pick(Kind::Container, rng) {
                    delete(Kind::Container, &c, &["rm", "-f", &c]);
                }
            }
            5 => {
                create(Kind::Volume, &name, &["volume", "create", &name]);
            }
            6 => {
                if let Some(v) = pick(Kind::Volume, rng) {
                    delete(Kind::Volume, &v, &["volume", "rm", "-f", &v]);
                }
            }
            7 => {
                let slot = {
                    let mut l = lock(&self.ledger);
                    let free = l.subnets.iter().position(Option::is_none);
                    if let Some(i) = free {
                        l.subnets[i] = Some(name.clone());
                    }
                    free
                };
                if let Some(i) = slot {
                    let subnet = d.spare_subnet(u8::try_from(i).unwrap());
                    let ok = create(
                        Kind::Network,
                        &name,
                        &["network", "create", "--subnet", &subnet, &name],
                    );
                    let _ = ok;
                }
            }
            8 => {
                if let Some(net) = pick(Kind::Network, rng) {
                    if delete(Kind::Network, &net, &["network", "rm", &net]) {
                        let mut l = lock(&self.ledger);
                        for s in l.subnets.iter_mut() {
                            if s.as_deref() == Some(net.as_str()) {
                                *s = None;
                            }
                        }
                    }
                }
            }
            9 => {
                create(Kind::Image, &name, &["tag", "busybox", &name]);
            }
            10 => {
                let arg = format!("X={n}");
                let ctx = ctx.to_str().expect("utf-8");
                create(
                    Kind::Image,
                    &name,
                    &["build", "-q", "--build-arg", &arg, "-t", &name, ctx],
                );
            }
            _ => {
                if let Some(i) = pick(Kind::Image, rng) {
                    delete(Kind::Image, &i, &["rmi", "-f", &i]);
                }
            }
        }
    }

    /// Every acknowledged create exists, every acknowledged delete is gone.
    fn check(&self, d: &Daemon) -> Vec<String> {
        let list = |args: &[&str]| -> HashSet<String> {
            let out = d.docker(args);
            assert_ok(&out, &args.join(" "));
            stdout(&out).lines().map(str::to_string).collect()
        };
        let containers = list(&["ps", "-a", "--format", "{{.Names}}"]);
        let volumes = list(&["volume", "ls", "-q"]);
        let networks = list(&["network", "ls", "--format", "{{.Name}}"]);
        let images = list(&["images", "--format", "{{.Repository}}"]);
        let mut problems = Vec::new();
        for n in containers.iter().filter(|n| n.starts_with("berth_build_")) {
            problems.push(format!("build container {n} survived the restart"));
        }
        for ((kind, name), state) in &lock(&self.ledger).objects {
            let seen = match kind {
                Kind::Container => &containers,
                Kind::Volume => &volumes,
                Kind::Network => &networks,
                Kind::Image => &images,
            }
            .contains(name);
            match state {
                Known::Present if !seen => problems.push(format!("{kind:?} {name}: created, gone")),
                Known::Absent if seen => problems.push(format!("{kind:?} {name}: deleted, back")),
                _ => {}
            }
        }
        let ids = list(&["ps", "-aq"]);
        if !ids.is_empty() {
            let mut args = vec!["inspect", "-f", "{{.State.Status}}"];
            args.extend(ids.iter().map(String::as_str));
            let out = d.docker(&args);
            if !out.status.success() {
                problems.push(format!("inspect failed: {}", stderr(&out)));
            }
        }
        problems
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn soak_sigkill_during_mixed_operations_keeps_every_acknowledged_change() {
    let seconds = env_num("BERTH_SOAK_SECONDS", 40);
    let workers = usize::try_from(env_num("BERTH_SOAK_WORKERS", 4)).unwrap();
    let d = Daemon::start();
    d.load_busybox();
    let ctx = d.root.join("soak-ctx");
    std::fs::create_dir_all(&ctx).expect("context");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nARG X\nRUN echo $X > /x\n",
    )
    .expect("Dockerfile");
    let soak = Arc::new(Soak {
        d: RwLock::new(d),
        ledger: Mutex::new(Ledger::default()),
        stop: AtomicBool::new(false),
        seq: AtomicUsize::new(0),
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let base = seed();
    eprintln!("soak: {seconds} s, {workers} workers, seed {base}");
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let soak = soak.clone();
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(base.wrapping_add(w as u64 * 0x9e37_79b9));
                while !soak.stop.load(Ordering::SeqCst) {
                    soak.step(w, &mut rng, &ctx);
                }
            })
        })
        .collect();
    let mut rng = Rng::new(base ^ 0x5bd1_e995);
    let mut kills = 0;
    let mut failures = Vec::new();
    while Instant::now() + Duration::from_secs(2) < deadline {
        std::thread::sleep(Duration::from_millis(500 + rng.below(3000)));
        let pid = soak.d.read().unwrap_or_else(|p| p.into_inner()).pid();
        // SIGKILL at whatever point the workers are; then, with every worker out of its
        // operation, restart and check.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let mut d = soak.d.write().unwrap_or_else(|p| p.into_inner());
        d.kill9();
        let t = Instant::now();
        d.restart();
        kills += 1;
        let problems = soak.check(&d);
        eprintln!(
            "soak: kill {kills}: restarted in {:?}, {} problems",
            t.elapsed(),
            problems.len()
        );
        if !problems.is_empty() {
            failures.push(format!("after kill {kills}:\n  {}", problems.join("\n  ")));
            break;
        }
    }
    soak.stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().expect("worker");
    }
    let d = soak.d.read().unwrap_or_else(|p| p.into_inner());
    let last = soak.check(&d);
    if !last.is_empty() {
        failures.push(format!("at the end:\n  {}", last.join("\n  ")));
    }
    let (acked, failed) = {
        let l = lock(&soak.ledger);
        (l.acked, l.failed)
    };
    eprintln!("soak: {kills} kills, {acked} acknowledged operations, {failed} cut by a kill");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(kills > 0, "the soak never killed berthd");
    assert!(
        acked > 10 * kills.min(5),
        "too few operations went through: {acked}"
    );
}
