//! ContainerStats and PodSandboxStats from the containers' cgroups (v2 or v1): CPU time and
//! memory (usage, working set, RSS, page faults); a pod's network usage from its network
//! namespace (`/proc/thread-self/net/dev` read on a thread that entered it: `eth0` as the
//! default interface, the others besides `lo`). Filesystem usage is not reported yet.

use std::path::Path;

use berth_cri::api;

use super::store::{ContainerRecord, PodRecord};
use super::{now_nanos, PodService};
use crate::resources::CgroupPaths;
use crate::stats::parse_flat;

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn u64v(v: u64) -> Option<api::UInt64Value> {
    Some(api::UInt64Value { value: v })
}

/// CPU nanoseconds and memory of a running process's cgroup.
fn sample(pid: i64) -> (Option<api::CpuUsage>, Option<api::MemoryUsage>) {
    let Some(paths) = CgroupPaths::for_pid(pid) else {
        return (None, None);
    };
    let ts = now_nanos();
    let (cpu_ns, usage, stat) = if let Some(dir) = &paths.v2 {
        let cpu = std::fs::read_to_string(dir.join("cpu.stat"))
            .ok()
            .map(|t| parse_flat(&t))
            .and_then(|m| m.get("usage_usec").copied())
            .map(|us| us * 1000);
        let stat = std::fs::read_to_string(dir.join("memory.stat"))
            .map(|t| parse_flat(&t))
            .unwrap_or_default();
        (cpu, read_u64(dir, "memory.current"), stat)
    } else {
        let dir_of = |c: &str| {
            paths
                .v1
                .iter()
                .find(|(n, _)| n.split(',').any(|x| x == c))
                .map(|(_, d)| d.clone())
        };
        let cpu = dir_of("cpuacct").and_then(|d| read_u64(&d, "cpuacct.usage"));
        let mem = dir_of("memory");
        let stat = mem
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("memory.stat")).ok())
            .map(|t| {
                parse_flat(&t)
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("total_")?.to_string(), v)))
                    .collect()
            })
            .unwrap_or_default();
        (
            cpu,
            mem.and_then(|d| read_u64(&d, "memory.usage_in_bytes")),
            stat,
        )
    };
    let cpu = cpu_ns.map(|n| api::CpuUsage {
        timestamp: ts,
        usage_core_nano_seconds: u64v(n),
        ..Default::default()
    });
    let mem = usage.map(|u| {
        let inactive = stat.get("inactive_file").copied().unwrap_or(0);
        let rss = stat
            .get("anon")
            .or_else(|| stat.get("rss"))
            .copied()
            .unwrap_or(0);
        api::MemoryUsage {
            timestamp: ts,
            working_set_bytes: u64v(u.saturating_sub(inactive)),
            usage_bytes: u64v(u),
            rss_bytes: u64v(rss),
            page_faults: stat.get("pgfault").copied().and_then(u64v),
            major_page_faults: stat.get("pgmajfault").copied().and_then(u64v),
            ..Default::default()
        }
    });
    (cpu, mem)
}

/// `/proc/net/dev` as (interface, rx bytes, rx errors, tx bytes, tx errors).
fn parse_net_dev(text: &str) -> Vec<(String, u64, u64, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            (f.len() >= 11).then(|| (name.trim().to_string(), f[0], f[2], f[8], f[10]))
        })
        .collect()
}

/// The interfaces of the network namespace pinned at `netns`, read on a throwaway thread that
/// joins it (berthd's own threads stay in the host's namespace).
fn net_dev_in(netns: &Path) -> Option<String> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || -> Option<String> {
        let f = std::fs::File::open(&netns).ok()?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        std::fs::read_to_string("/proc/thread-self/net/dev").ok()
    })
    .join()
    .ok()
    .flatten()
}

/// A pod's network usage from its namespace (`None` for host-network pods).
fn network_usage(netns: &Path) -> Option<api::NetworkUsage> {
    let text = net_dev_in(netns)?;
    let usage =
        |(name, rx, rx_err, tx, tx_err): (String, u64, u64, u64, u64)| api::NetworkInterfaceUsage {
            name,
            rx_bytes: u64v(rx),
            rx_errors: u64v(rx_err),
            tx_bytes: u64v(tx),
            tx_errors: u64v(tx_err),
        };
    let mut all: Vec<api::NetworkInterfaceUsage> = parse_net_dev(&text)
        .into_iter()
        .filter(|i| i.0 != "lo")
        .map(usage)
        .collect();
    let default = all
        .iter()
        .position(|i| i.name == "eth0")
        .map(|i| all.remove(i));
    Some(api::NetworkUsage {
        timestamp: now_nanos(),
        default_interface: default,
        interfaces: all,
    })
}

/// The number of processes in a cgroup (`cgroup.procs` of v2, or of v1's pids/memory).
fn process_count(paths: &CgroupPaths) -> usize {
    let dir = paths.v2.clone().or_else(|| {
        paths
            .v1
            .iter()
            .find(|(n, _)| n.split(',').any(|x| x == "pids" || x == "memory"))
            .map(|(_, d)| d.clone())
    });
    dir.and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

impl PodService {
    pub(crate) fn stats_of(&self, r: &ContainerRecord) -> api::ContainerStats {
        let cfg = r.config();
        let pid = self
            .daemon
            .get(&r.id)
            .filter(|c| c.state.status.is_active())
            .map(|c| c.state.pid)
            .unwrap_or(0);
        let (cpu, memory) = if pid > 0 { sample(pid) } else { (None, None) };
        api::ContainerStats {
            attributes: Some(api::ContainerAttributes {
                id: r.id.clone(),
                metadata: cfg.metadata,
                labels: cfg.labels,
                annotations: cfg.annotations,
            }),
            cpu,
            memory,
            writable_layer: Some(self.writable_layer(&r.id)),
            swap: None,
            io: None,
        }
    }

    /// The container's writable layer (its overlay upper directory): bytes and inodes used.
    pub(crate) fn writable_layer(&self, id: &str) -> api::FilesystemUsage {
        let upper = self.daemon.runtime.upper_dir(id);
        let usage = crate::sys::tree_usage(&upper);
        api::FilesystemUsage {
            timestamp: now_nanos(),
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: upper.display().to_string(),
            }),
            used_bytes: Some(api::UInt64Value { value: usage.bytes }),
            inodes_used: Some(api::UInt64Value {
                value: usage.inodes,
            }),
        }
    }

    pub(crate) fn pod_stats(&self, r: &PodRecord) -> api::PodSandboxStats {
        let cfg = r.config();
        let containers: Vec<api::ContainerStats> = self
            .store
            .containers_of(&r.id)
            .iter()
            .map(|c| self.stats_of(c))
            .collect();
        let ts = now_nanos();
        // Processes: those in the running containers' cgroups.
        let running: usize = self
            .store
            .containers_of(&r.id)
            .iter()
            .filter_map(|c| self.daemon.get(&c.id))
            .filter(|c| c.state.status.is_active() && c.state.pid > 0)
            .filter_map(|c| CgroupPaths::for_pid(c.state.pid))
            .map(|p| process_count(&p))
            .sum();
        let sum = |f: &dyn Fn(&api::ContainerStats) -> Option<u64>| -> u64 {
            containers.iter().filter_map(f).sum()
        };
        let cpu = api::CpuUsage {
            timestamp: ts,
            usage_core_nano_seconds: u64v(sum(&|c| {
                c.cpu
                    .as_ref()?
                    .usage_core_nano_seconds
                    .as_ref()
                    .map(|v| v.value)
            })),
            ..Default::default()
        };
        let memory = api::MemoryUsage {
            timestamp: ts,
            working_set_bytes: u64v(sum(&|c| {
                c.memory
                    .as_ref()?
                    .working_set_bytes
                    .as_ref()
                    .map(|v| v.value)
            })),
            usage_bytes: u64v(sum(&|c| {
                c.memory.as_ref()?.usage_bytes.as_ref().map(|v| v.value)
            })),
            ..Default::default()
        };
        api::PodSandboxStats {
            attributes: Some(api::PodSandboxAttributes {
                id: r.id.clone(),
                metadata: cfg.metadata,
                labels: cfg.labels,
                annotations: cfg.annotations,
            }),
            linux: Some(api::LinuxPodSandboxStats {
                cpu: Some(cpu),
                memory: Some(memory),
                network: r
                    .netns
                    .as_deref()
                    .filter(|_| r.ready)
                    .and_then(network_usage),
                process: Some(api::ProcessUsage {
                    timestamp: ts,
                    process_count: u64v(running as u64),
                }),
                containers,
                io: None,
            }),
            windows: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_parsed() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    5000      40    1    0    0     0          0         0     3000      30    2    0    0     0       0          0
";
        let v = parse_net_dev(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], ("eth0".to_string(), 5000, 1, 3000, 2));
    }
}
