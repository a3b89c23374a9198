//! `GET /containers/{id}/stats`: Docker's stats JSON, read from the container's cgroups (v1 or v2)
//! and `/proc/<pid>/net/dev`.
//!
//! `stream=false` without `one-shot` samples twice a second apart so `precpu_stats` is filled
//! and a client can compute a CPU percentage from one answer, as Docker does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::model::now_rfc3339;
use crate::resources::CgroupPaths;
use crate::{channel_stream, Daemon, Result};

/// Nanoseconds per USER_HZ tick (Linux reports /proc/stat and cpuacct.stat in 1/100 s).
const NS_PER_TICK: u64 = 10_000_000;

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
pub(crate) fn parse_flat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Total host CPU time in nanoseconds from the `cpu` line of /proc/stat (Docker's
/// `system_cpu_usage`: user+nice+system+idle+iowait+irq+softirq).
pub(crate) fn system_cpu_usage(proc_stat: &str) -> u64 {
    proc_stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
                * NS_PER_TICK
        })
        .unwrap_or(0)
}

/// Interfaces other than `lo` from /proc/<pid>/net/dev.
pub(crate) fn parse_net_dev(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    out
}

/// v1 blkio lines `8:0 Read 4096` → Docker's entries; `Total` lines are kept as Docker does.
fn parse_blkio_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let dev = it.next()?;
            let op = it.next()?;
            let value: u64 = it.next()?.parse().ok()?;
            let (maj, min) = dev.split_once(':')?;
            Some(json!({"major": maj.parse::<u64>().ok()?, "minor": min.parse::<u64>().ok()?, "op": op, "value": value}))
        })
        .collect()
}

/// v2 io.stat lines `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...` → (bytes, ios) entries.
fn parse_io_stat(text: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = it
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let get = |k: &str| kv.get(k).copied().unwrap_or(0);
        bytes.push(json!({"major": maj, "minor": min, "op": "read", "value": get("rbytes")}));
        bytes.push(json!({"major": maj, "minor": min, "op": "write", "value": get("wbytes")}));
        ios.push(json!({"major": maj, "minor": min, "op": "read", "value": get("rios")}));
        ios.push(json!({"major": maj, "minor": min, "op": "write", "value": get("wios")}));
    }
    (bytes, ios)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn online_cpus() -> u64 {
    crate::sysinfo::ncpu().unsigned_abs()
}

fn max_value(s: Option<String>) -> Option<u64> {
    let s = s?;
    let s = s.trim();
    if s == "max" {
        None
    } else {
        s.parse().ok()
    }
}

/// One sample: (cpu_stats, memory_stats, blkio_stats, pids_stats).
fn sample(paths: &CgroupPaths) -> (Value, Value, Value, Value) {
    let system = system_cpu_usage(&std::fs::read_to_string("/proc/stat").unwrap_or_default());
    let mem_total = host_memory();
    let cap = |l: u64| {
        if l == 0 || l > mem_total {
            mem_total
        } else {
            l
        }
    };
    if let Some(dir) = &paths.v2 {
        let cpu = parse_flat(&read(dir, "cpu.stat").unwrap_or_default());
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        let cpu_stats = json!({
            "cpu_usage": {
                "total_usage": g("usage_usec") * 1000,
                "usage_in_kernelmode": g("system_usec") * 1000,
                "usage_in_usermode": g("user_usec") * 1000,
            },
            "system_cpu_usage": system,
            "online_cpus": online_cpus(),
            "throttling_data": {
                "periods": g("nr_periods"),
                "throttled_periods": g("nr_throttled"),
                "throttled_time": g("throttled_usec") * 1000,
            },
        });
        let stats = parse_flat(&read(dir, "memory.stat").unwrap_or_default());
        let limit = cap(max_value(read(dir, "memory.max")).unwrap_or(0));
        let memory_stats = json!({
            "usage": read_u64(dir, "memory.current").unwrap_or(0),
            "stats": stats,
            "limit": limit,
        });
        let (bytes, ios) = parse_io_stat(&read(dir, "io.stat").unwrap_or_default());
        let blkio = json!({"io_service_bytes_recursive": bytes, "io_serviced_recursive": ios});
        let mut pids = json!({"current": read_u64(dir, "pids.current").unwrap_or(0)});
        if let Some(l) = max_value(read(dir, "pids.max")) {
            pids["limit"] = json!(l);
        }
        return (cpu_stats, memory_stats, blkio, pids);
    }
    let mut cpu_stats = json!({"system_cpu_usage": system, "online_cpus": online_cpus()});
    if let Some(dir) = paths.v1("cpuacct") {
        let st = parse_flat(&read(dir, "cpuacct.stat").unwrap_or_default());
        let percpu: Vec<u64> = read(dir, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        cpu_stats["cpu_usage"] = json!({
            "total_usage": read_u64(dir, "cpuacct.usage").unwrap_or(0),
            "percpu_usage": percpu,
            "usage_in_kernelmode": st.get("system").copied().unwrap_or(0) * NS_PER_TICK,
            "usage_in_usermode": st.get("user").copied().unwrap_or(0) * NS_PER_TICK,
        });
    }
    if let Some(dir) = paths.v1("cpu") {
        let st = parse_flat(&read(dir, "cpu.stat").unwrap_or_default());
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        cpu_stats["throttling_data"] = json!({
            "periods": g("nr_periods"),
            "throttled_periods": g("nr_throttled"),
            "throttled_time": g("throttled_time"),
        });
    }
    let memory_stats = match paths.v1("memory") {
        Some(dir) => json!({
            "usage": read_u64(dir, "memory.usage_in_bytes").unwrap_or(0),
            "max_usage": read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0),
            "failcnt": read_u64(dir, "memory.failcnt").unwrap_or(0),
            "stats": parse_flat(&read(dir, "memory.stat").unwrap_or_default()),
            "limit": cap(read_u64(dir, "memory.limit_in_bytes").unwrap_or(0)),
        }),
        None => json!({}),
    };
    let blkio = match paths.v1("blkio") {
        Some(dir) => {
            let f = |name: &str| {
                read(dir, &format!("{name}_recursive"))
                    .or_else(|| read(dir, name))
                    .map(|t| parse_blkio_v1(&t))
                    .unwrap_or_default()
            };
            // The other lists come from the CFQ/BFQ scheduler files, empty without them.
            json!({
                "io_service_bytes_recursive": f("blkio.throttle.io_service_bytes"),
                "io_serviced_recursive": f("blkio.throttle.io_serviced"),
                "io_queue_recursive": f("blkio.io_queued"),
                "io_service_time_recursive": f("blkio.io_service_time"),
                "io_wait_time_recursive": f("blkio.io_wait_time"),
                "io_merged_recursive": f("blkio.io_merged"),
                "io_time_recursive": f("blkio.time"),
                "sectors_recursive": f("blkio.sectors"),
            })
        }
        None => json!({}),
    };
    let pids = match paths.v1("pids") {
        Some(dir) => {
            let mut p = json!({"current": read_u64(dir, "pids.current").unwrap_or(0)});
            if let Some(l) = max_value(read(dir, "pids.max")) {
                p["limit"] = json!(l);
            }
            p
        }
        None => json!({}),
    };
    (cpu_stats, memory_stats, blkio, pids)
}

/// `cpu_stats` with nothing measured (no sample yet, or not running): dockerd's zero values,
/// every field present.
fn empty_cpu() -> Value {
    json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// `blkio_stats` of a container that is not running: dockerd's keys, all null.
fn empty_blkio() -> Value {
    json!({
        "io_service_bytes_recursive": null,
        "io_serviced_recursive": null,
        "io_queue_recursive": null,
        "io_service_time_recursive": null,
        "io_wait_time_recursive": null,
        "io_merged_recursive": null,
        "io_time_recursive": null,
        "sectors_recursive": null,
    })
}

/// Docker's zero time, what `preread` says before the first sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

struct Sampler {
    id: String,
    name: String,
    pid: i64,
    prev: Option<(String, Value)>,
}

impl Sampler {
    fn next(&mut self) -> Value {
        let read_at = now_rfc3339();
        let paths = if self.pid > 0 {
            CgroupPaths::for_pid(self.pid)
        } else {
            None
        };
        let (cpu, mem, blkio, pids, nets) = match &paths {
            Some(p) => {
                let (c, m, b, pi) = sample(p);
                let nets = std::fs::read_to_string(format!("/proc/{}/net/dev", self.pid))
                    .map(|t| parse_net_dev(&t))
                    .unwrap_or_default();
                (c, m, b, pi, nets)
            }
            None => (empty_cpu(), json!({}), empty_blkio(), json!({}), Map::new()),
        };
        let (preread, precpu) = match self.prev.take() {
            Some((t, c)) => (t, c),
            None => (ZERO_TIME.to_string(), empty_cpu()),
        };
        self.prev = Some((read_at.clone(), cpu.clone()));
        let mut v = json!({
            "name": self.name,
            "id": self.id,
            "read": read_at,
            "preread": preread,
            "pids_stats": pids,
            "blkio_stats": blkio,
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": precpu,
            "memory_stats": mem,
        });
        if !nets.is_empty() {
            v["networks"] = Value::Object(nets);
        }
        v
    }
}

fn line(v: &Value) -> bytes::Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    b.into()
}

impl Daemon {
    pub async fn container_stats(
        self: &Arc<Self>,
        key: &str,
        opts: berth_services::StatsOptions,
    ) -> Result<berth_services::ByteStream> {
        let berth_services::StatsOptions {
            stream,
            one_shot,
            os_type,
        } = opts;
        let line = move |v: &Value| {
            if os_type {
                let mut v = v.clone();
                v["os_type"] = Value::from("linux");
                line(&v)
            } else {
                line(v)
            }
        };
        let c = self.resolve_container(key)?;
        let running = c.state.status.is_active();
        let mut s = Sampler {
            id: c.id.clone(),
            name: format!("/{}", c.name.trim_start_matches('/')),
            pid: if running { c.state.pid } else { 0 },
            prev: None,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let this = self.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            if !stream {
                let mut v = s.next();
                if !one_shot && running {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    v = s.next();
                }
                let _ = tx.send(Ok(line(&v))).await;
                return;
            }
            loop {
                let v = s.next();
                if tx.send(Ok(line(&v))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                // A container that stopped streams zeroed samples, as Docker does.
                match this.get(&id) {
                    Some(c) if c.state.status.is_active() => s.pid = c.state.pid,
                    Some(_) => s.pid = 0,
                    None => return,
                }
            }
        });
        Ok(channel_stream(rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsers() {
        assert_eq!(
            system_cpu_usage("cpu  10 0 5 100 1 0 4 0 0 0\ncpu0 1 2 3\n"),
            120 * NS_PER_TICK
        );
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 100 2 0 0 0 0 0 0 200 3 0 1 0 0 0 0\n";
        let n = parse_net_dev(dev);
        assert_eq!(n.len(), 1);
        assert_eq!(n["eth0"]["rx_bytes"], 100);
        assert_eq!(n["eth0"]["tx_packets"], 3);
        assert_eq!(n["eth0"]["tx_dropped"], 1);
        let f = parse_flat("cache 5\nrss 7\nbogus\n");
        assert_eq!(f.get("rss"), Some(&7));
        let b = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["op"], "Read");
        let (bytes, ios) = parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n");
        assert_eq!(bytes[1]["value"], 20);
        assert_eq!(ios[0]["value"], 1);
    }
}
