//! `berth update` and `berth stats`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api_types::container::{RestartPolicy, UpdateConfig};
use berth_client::{Body, Query};
use clap::Args;
use http::Method;
use serde_json::{json, Map, Value};

use crate::format::{bytes_size, human_size_prec, short_id, ListFormat};
use crate::opts::parse_bytes;
use crate::util::{daemon_err, CliError, CmdResult, Ctx};

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<f64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The `UpdateConfig` body docker's CLI sends for these flags.
pub fn update_body(a: &UpdateArgs) -> Result<UpdateConfig, CliError> {
    let bytes = |v: &Option<String>| -> Result<i64, CliError> {
        match v.as_deref() {
            None => Ok(0),
            Some("-1") => Ok(-1),
            Some(s) => Ok(parse_bytes(s)?),
        }
    };
    let mut body = UpdateConfig {
        blkio_weight: a.blkio_weight.unwrap_or(0),
        cpu_period: a.cpu_period.unwrap_or(0),
        cpu_quota: a.cpu_quota.unwrap_or(0),
        cpu_shares: a.cpu_shares.unwrap_or(0),
        nano_cpus: a
            .cpus
            .map(|c| berth_go::trunc_i64((c * 1e9).round()))
            .unwrap_or(0),
        cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: a.cpuset_mems.clone().unwrap_or_default(),
        memory: bytes(&a.memory)?,
        memory_reservation: bytes(&a.memory_reservation)?,
        memory_swap: bytes(&a.memory_swap)?,
        // Unset: `null`, "leave as is".
        pids_limit: a.pids_limit,
        ..UpdateConfig::default()
    };
    // Unset: a policy without a name, "leave as is".
    if let Some(r) = &a.restart {
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (
                n,
                c.parse::<i64>()
                    .map_err(|_| CliError::new(125, format!("invalid restart policy: {r}")))?,
            ),
            None => (r.as_str(), 0),
        };
        body.restart_policy = RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: count,
        };
    }
    Ok(body)
}

pub async fn update(ctx: &Ctx, a: UpdateArgs) -> CmdResult {
    let body = update_body(&a)?;
    let mut errors = Vec::new();
    for n in &a.containers {
        let res: Result<Value, _> = ctx
            .client
            .post_json(
                &format!("/containers/{n}/update"),
                &Query::new(),
                Body::json(&body)?,
            )
            .await;
        match res {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or_default());
                }
                println!("{n}");
            }
            Err(e) => errors.push(daemon_err(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::new(1, errors.join("\n")))
    }
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

const DEFAULT_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn headers() -> Value {
    json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

fn u(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64
}

/// One table row from a stats object, with docker CLI's arithmetic.
pub fn stats_row(key: &str, s: &Value, no_trunc: bool) -> Value {
    let cpu_delta = u(&s["cpu_stats"]["cpu_usage"]["total_usage"])
        - u(&s["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        u(&s["cpu_stats"]["system_cpu_usage"]) - u(&s["precpu_stats"]["system_cpu_usage"]);
    let mut online = u(&s["cpu_stats"]["online_cpus"]);
    if online == 0.0 {
        online = s["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    let cpu = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let usage = u(&mem["usage"]);
    // docker subtracts the page cache: total_inactive_file on v1, inactive_file on v2.
    let inactive = if mem["stats"].get("total_inactive_file").is_some() {
        u(&mem["stats"]["total_inactive_file"])
    } else {
        u(&mem["stats"]["inactive_file"])
    };
    let used = if inactive < usage {
        usage - inactive
    } else {
        usage
    };
    let limit = u(&mem["limit"]);
    let mem_perc = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"].as_object().into_iter().flat_map(Map::values) {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => rd += u(&e["value"]),
            "write" => wr += u(&e["value"]),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or_default();
    let running = s["pids_stats"].get("current").is_some();
    let name = s["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let dash = |v: String| if running { v } else { "--".to_string() };
    json!({
        "Container": key,
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Name": if name.is_empty() { "--" } else { name },
        "CPUPerc": dash(format!("{cpu:.2}%")),
        "MemUsage": dash(format!("{} / {}", bytes_size(used), bytes_size(limit))),
        "MemPerc": dash(format!("{mem_perc:.2}%")),
        "NetIO": dash(format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3))),
        "BlockIO": dash(format!("{} / {}", human_size_prec(rd, 3), human_size_prec(wr, 3))),
        "PIDs": dash(s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string()),
    })
}

async fn names(ctx: &Ctx, a: &StatsArgs) -> Result<Vec<String>, CliError> {
    if !a.containers.is_empty() {
        return Ok(a.containers.clone());
    }
    let list: Vec<Value> = ctx
        .client
        .get_json("/containers/json", &Query::new().flag("all", a.all))
        .await?;
    Ok(list
        .iter()
        .filter_map(|c| c["Id"].as_str().map(|s| s[..12.min(s.len())].to_string()))
        .collect())
}

pub async fn stats(ctx: &Ctx, a: StatsArgs) -> CmdResult {
    let fmt = ListFormat::parse(a.format.as_deref(), DEFAULT_TABLE)?;
    let names = names(ctx, &a).await?;
    if a.no_stream {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for n in &names {
            let q = Query::new().add("stream", "false");
            match ctx
                .client
                .get_json::<Value>(&format!("/containers/{n}/stats"), &q)
                .await
            {
                Ok(v) => rows.push(stats_row(n, &v, a.no_trunc)),
                Err(e) => errors.push(daemon_err(&e)),
            }
        }
        if !errors.is_empty() {
            return Err(CliError::new(1, errors.join("\n")));
        }
        print!("{}", fmt.render(&headers(), &rows)?);
        return Ok(0);
    }
    // Live: one streaming request per container feeds the latest sample; the table is
    // redrawn every second.
    let latest: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::default();
    for (i, n) in names.iter().enumerate() {
        let mut stream = ctx
            .client
            .json_stream(
                Method::GET,
                &format!("/containers/{n}/stats"),
                &Query::new().add("stream", "true"),
                Body::Empty,
            )
            .await?;
        let latest = latest.clone();
        let key = n.clone();
        let no_trunc = a.no_trunc;
        tokio::spawn(async move {
            while let Some(Ok(v)) = stream.next().await {
                let row = stats_row(&key, &v, no_trunc);
                latest
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(i, row);
            }
        });
    }
    loop {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let rows: Vec<Value> = latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let text = fmt.render(&headers(), &rows)?;
        let mut out = std::io::stdout();
        let _ = write!(out, "\x1b[2J\x1b[H{text}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_row_like_docker() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3 << 20, "limit": 64 << 20, "stats": {"total_inactive_file": 1 << 20}},
            "pids_stats": {"current": 3},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}]},
        });
        let r = stats_row("web", &s, false);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 64MiB");
        assert_eq!(r["MemPerc"], "3.12%");
        assert_eq!(r["NetIO"], "1kB / 2kB");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
    }

    #[test]
    fn update_body_fields() {
        let a = UpdateArgs {
            blkio_weight: None,
            cpu_period: None,
            cpu_quota: None,
            cpu_shares: None,
            cpus: Some(0.5),
            cpuset_cpus: None,
            cpuset_mems: None,
            memory: Some("64m".into()),
            memory_reservation: None,
            memory_swap: Some("-1".into()),
            pids_limit: Some(10),
            restart: Some("on-failure:3".into()),
            containers: vec!["c".into()],
        };
        let b = serde_json::to_value(update_body(&a).unwrap()).unwrap();
        assert_eq!(b["Memory"], 64 << 20);
        assert_eq!(b["MemorySwap"], -1);
        assert_eq!(b["NanoCpus"], 500_000_000);
        assert_eq!(b["PidsLimit"], 10);
        assert_eq!(b["RestartPolicy"]["MaximumRetryCount"], 3);
        // Unset flags: Go's zero values, a nameless policy and a null `PidsLimit`.
        let b = serde_json::to_value(
            update_body(&UpdateArgs {
                pids_limit: None,
                restart: None,
                ..a
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(b["PidsLimit"], Value::Null);
        assert_eq!(
            b["RestartPolicy"],
            json!({"Name": "", "MaximumRetryCount": 0})
        );
        assert_eq!(b["CpuQuota"], 0);
    }
}
