//! Living next to an iptables firewall another engine or the administrator set up.
//!
//! Docker (20.10, and 28 with its iptables backend) sets the policy of the iptables `filter`
//! table's `FORWARD` chain to `DROP` and accepts only its own bridges' traffic; with
//! `br_netfilter` (which Docker loads, and which some kernels build in) even packets a bridge
//! passes between two of its own ports go through that chain. On such a host berth's
//! containers could reach neither each other nor the outside, and published ports would be
//! dead. nftables evaluates every base chain of a hook: an `accept` in berth's own table
//! does not overrule a `drop` in iptables' one, so the accept has to be in the iptables table.
//!
//! Only when the host's filter table is in that state (a `DROP` policy on `FORWARD`, or
//! Docker's `DOCKER-USER` chain exists) berth keeps a chain of its own, `BERTH-FWD-<daemon>`,
//! accepting its bridges' traffic: everything coming from a berth bridge (berth's nftables
//! table still isolates networks from each other and fences internal ones in, since its
//! `drop`s apply regardless), and to a berth bridge what belongs to a connection from there
//! or to a published port (conntrack `RELATED,ESTABLISHED,DNAT`). The chain is reached from
//! the top of `DOCKER-USER`, the chain Docker documents for rules of others, when it exists,
//! else from the top of `FORWARD`. Nothing else is changed: Docker's chains and the policy
//! stay as they are. On a host whose `FORWARD` chain accepts, iptables is not touched at all.
//!
//! Debian 12 has two iptables backends: `iptables-nft` (the default `iptables`) writes into
//! nftables' `ip filter` table, `iptables-legacy` into the kernel's xtables. A packet must
//! pass both, so each backend that holds a filter table gets the chain. The legacy one is
//! only looked at when its filter table exists already (`/proc/net/ip_tables_names`):
//! listing it would create it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// The iptables backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Legacy,
}

/// What the host's filter table looks like to one backend and address family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// `-S FORWARD`.
    pub forward: String,
    /// `-S DOCKER-USER`, when that chain exists.
    pub docker_user: Option<String>,
    /// `-S <berth's chain>`, when it exists (from an earlier run).
    pub ours: Option<String>,
}

/// The name of a daemon's chain, from the suffix of its nftables table (`berth_<bridge>`),
/// so that several daemons on one host keep their own (iptables allows 28 characters).
pub fn chain_name(table: &str) -> String {
    let suffix = table.strip_prefix("berth_").unwrap_or(table);
    let mut name = format!("BERTH-FWD-{suffix}");
    name.truncate(28);
    name
}

fn forward_drops(forward: &str) -> bool {
    forward
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["-P", "FORWARD", "DROP"])
}

fn jumps_to(listing: &str, from: &str, chain: &str) -> bool {
    let want = ["-A", from, "-j", chain];
    listing
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

/// The `iptables-restore --noflush` input that gives `chain` exactly the rules for
/// `bridges` and hooks it in, or `None` when the filter table needs nothing from berth.
pub fn plan(seen: &Seen, chain: &str, bridges: &[String]) -> Option<String> {
    if !forward_drops(&seen.forward) && seen.docker_user.is_none() && seen.ours.is_none() {
        return None;
    }
    // Declaring the chain flushes it (also with --noflush): its rules are replaced in one go.
    let mut s = format!("*filter\n:{chain} - [0:0]\n");
    for br in bridges {
        s.push_str(&format!("-A {chain} -i {br} -j ACCEPT\n"));
        s.push_str(&format!(
            "-A {chain} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n"
        ));
    }
    let hook = match &seen.docker_user {
        Some(_) => "DOCKER-USER",
        None => "FORWARD",
    };
    let listing = seen.docker_user.as_deref().unwrap_or(&seen.forward);
    if !jumps_to(listing, hook, chain) {
        s.push_str(&format!("-I {hook} 1 -j {chain}\n"));
    }
    s.push_str("COMMIT\n");
    Some(s)
}

/// The `iptables` and `iptables-restore` of a backend and family, when installed.
fn binaries(backend: Backend, v6: bool) -> Option<(String, String)> {
    let base = if v6 { "ip6tables" } else { "iptables" };
    let kind = match backend {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    };
    let specific = (format!("{base}-{kind}"), format!("{base}-{kind}-restore"));
    if which(&specific.0) {
        return Some(specific);
    }
    // Distributions without the suffixed names: the plain binary, if it is that backend.
    let out = Command::new(base).arg("-V").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).to_string();
    let is = match backend {
        Backend::Nft => version.contains("nf_tables"),
        Backend::Legacy => version.contains("legacy"),
    };
    is.then(|| (base.to_string(), format!("{base}-restore")))
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(name).exists())
}

fn legacy_in_use(v6: bool) -> bool {
    let names = if v6 {
        "/proc/net/ip6_tables_names"
    } else {
        "/proc/net/ip_tables_names"
    };
    std::fs::read_to_string(names).is_ok_and(|s| s.lines().any(|l| l.trim() == "filter"))
}

/// `<iptables> -w -S <chain>`: its rules, `None` when the chain does not exist.
fn list(bin: &str, chain: &str) -> Option<String> {
    let out = Command::new(bin)
        .args(["-w", "-t", "filter", "-S", chain])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

fn restore(bin: &str, script: &str) -> Result<()> {
    let what = format!("updating the iptables filter table ({bin})");
    let mut child = Command::new(bin)
        .args(["--noflush", "-w"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(crate::io_err(what.clone()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(crate::io_err(what.clone()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(crate::io_err(what.clone()))?;
    if !out.status.success() {
        return Err(Error::Command {
            what,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Brings berth's chain `chain` in every iptables filter table that drops forwarded
/// traffic (see the module docs) up to date with `bridges`, for IPv4 and IPv6. Returns the
/// tables it changed, as `iptables-nft`-style names, for the log.
pub fn refresh(chain: &str, bridges: &[String]) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for v6 in [false, true] {
        for backend in [Backend::Nft, Backend::Legacy] {
            if backend == Backend::Legacy && !legacy_in_use(v6) {
                continue;
            }
            let Some((bin, restore_bin)) = binaries(backend, v6) else {
                continue;
            };
            let Some(forward) = list(&bin, "FORWARD") else {
                continue;
            };
            let seen = Seen {
                forward,
                docker_user: list(&bin, "DOCKER-USER"),
                ours: list(&bin, chain),
            };
            if let Some(script) = plan(&seen, chain, bridges) {
                restore(&restore_bin, &script)?;
                changed.push(bin);
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridges() -> Vec<String> {
        vec!["berth0".to_string(), "br-0123456789ab".to_string()]
    }

    #[test]
    fn an_accepting_host_is_left_alone() {
        let seen = Seen {
            forward: "-P FORWARD ACCEPT\n".into(),
            ..Default::default()
        };
        assert_eq!(plan(&seen, "BERTH-FWD-berth0", &bridges()), None);
        // A rule that drops is the admin's business; only the policy counts.
        let seen = Seen {
            forward: "-P FORWARD ACCEPT\n-A FORWARD -i eth9 -j DROP\n".into(),
            ..Default::default()
        };
        assert_eq!(plan(&seen, "BERTH-FWD-berth0", &bridges()), None);
    }

    #[test]
    fn a_drop_policy_gets_a_chain_jumped_to_from_forward() {
        let seen = Seen {
            forward: "-P FORWARD DROP\n".into(),
            ..Default::default()
        };
        let script = plan(&seen, "BERTH-FWD-berth0", &bridges()).unwrap();
        assert_eq!(
            script,
            "*filter\n:BERTH-FWD-berth0 - [0:0]\n\
             -A BERTH-FWD-berth0 -i berth0 -j ACCEPT\n\
             -A BERTH-FWD-berth0 -o berth0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n\
             -A BERTH-FWD-berth0 -i br-0123456789ab -j ACCEPT\n\
             -A BERTH-FWD-berth0 -o br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n\
             -I FORWARD 1 -j BERTH-FWD-berth0\n\
             COMMIT\n"
        );
        // The jump is there already: only the chain's rules are rewritten.
        let seen = Seen {
            forward: "-P FORWARD DROP\n-A FORWARD -j BERTH-FWD-berth0\n".into(),
            ours: Some("-N BERTH-FWD-berth0\n".into()),
            ..Default::default()
        };
        let script = plan(&seen, "BERTH-FWD-berth0", &bridges()).unwrap();
        assert!(!script.contains("-I FORWARD"), "{script}");
    }

    #[test]
    fn with_docker_the_jump_goes_into_docker_user() {
        // What dockerd 20.10 leaves: FORWARD drops, DOCKER-USER returns.
        let seen = Seen {
            forward: "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n\
                      -A FORWARD -j DOCKER-ISOLATION-STAGE-1\n"
                .into(),
            docker_user: Some("-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n".into()),
            ours: None,
        };
        let script = plan(&seen, "BERTH-FWD-b1", &bridges()[..1]).unwrap();
        assert!(
            script.ends_with("-I DOCKER-USER 1 -j BERTH-FWD-b1\nCOMMIT\n"),
            "{script}"
        );
        assert!(!script.contains("FORWARD"), "{script}");
        // Docker's chain exists but its policy is back to ACCEPT: still kept up to date.
        let seen = Seen {
            forward: "-P FORWARD ACCEPT\n".into(),
            docker_user: Some(
                "-N DOCKER-USER\n-A DOCKER-USER -j BERTH-FWD-b1\n-A DOCKER-USER -j RETURN\n".into(),
            ),
            ours: Some("-N BERTH-FWD-b1\n".into()),
        };
        let script = plan(&seen, "BERTH-FWD-b1", &[]).unwrap();
        assert_eq!(script, "*filter\n:BERTH-FWD-b1 - [0:0]\nCOMMIT\n");
    }

    /// Runs `f` on a thread in a network namespace of its own, which the kernel frees with
    /// everything in it (iptables tables included) when the thread ends; processes the
    /// thread spawns live in it too.
    fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
                f()
            })
            .join()
            .expect("netns thread")
        })
    }

    fn ipt(args: &[&str]) -> String {
        let out = Command::new("iptables-nft").args(args).output().unwrap();
        assert!(out.status.success(), "iptables-nft {args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    #[test]
    #[ignore = "needs root (netns, iptables-nft): the privileged tier runs it"]
    fn refresh_programs_a_table_docker_left_and_keeps_it_current() {
        if !nix::unistd::geteuid().is_root() || !which("iptables-nft") {
            return;
        }
        in_fresh_netns(|| {
            // Nothing to do on a fresh host; nothing is created either.
            assert!(refresh("BERTH-FWD-t", &bridges()).unwrap().is_empty());
            assert!(list("iptables-nft", "BERTH-FWD-t").is_none());
            // What dockerd 20.10 sets up.
            ipt(&["-P", "FORWARD", "DROP"]);
            ipt(&["-N", "DOCKER-USER"]);
            ipt(&["-A", "DOCKER-USER", "-j", "RETURN"]);
            ipt(&["-I", "FORWARD", "-j", "DOCKER-USER"]);
            let changed = refresh("BERTH-FWD-t", &bridges()).unwrap();
            assert!(changed.contains(&"iptables-nft".to_string()), "{changed:?}");
            let user = ipt(&["-S", "DOCKER-USER"]);
            assert!(
                user.starts_with("-N DOCKER-USER\n-A DOCKER-USER -j BERTH-FWD-t\n"),
                "{user}"
            );
            let ours = ipt(&["-S", "BERTH-FWD-t"]);
            assert!(
                ours.contains("-A BERTH-FWD-t -i berth0 -j ACCEPT"),
                "{ours}"
            );
            assert!(ours.contains("-o br-0123456789ab"), "{ours}");
            // One network less: its rules go, the jump stays single.
            refresh("BERTH-FWD-t", &bridges()[..1]).unwrap();
            let ours = ipt(&["-S", "BERTH-FWD-t"]);
            assert!(!ours.contains("br-0123456789ab"), "{ours}");
            let user = ipt(&["-S", "DOCKER-USER"]);
            assert_eq!(user.matches("BERTH-FWD-t").count(), 1, "{user}");
            // The policy and Docker's rules are left as they were.
            assert!(ipt(&["-S", "FORWARD"]).starts_with("-P FORWARD DROP"));
            assert!(user.contains("-A DOCKER-USER -j RETURN"), "{user}");
        });
    }

    #[test]
    fn chain_names_fit_iptables() {
        assert_eq!(chain_name("berth_berth0"), "BERTH-FWD-berth0");
        let long = chain_name("berth_none_0123abcd");
        assert_eq!(long, "BERTH-FWD-none_0123abcd");
        assert!(chain_name("berth_abcdefghijklmnopqrstuvwxyz").len() <= 28);
    }
}
