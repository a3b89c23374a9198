//! `GET /containers/{id}/top`.

use berth_api_types::container as ct;
use berth_api_types::ApiError;

use super::not_running;
use crate::{internal, Daemon, Result};

impl Daemon {
    pub async fn container_top(
        &self,
        key: &str,
        ps_args: Option<String>,
    ) -> Result<ct::TopResponse> {
        let c = self.resolve_container(key)?;
        if !c.state.status.is_active() {
            return Err(not_running(&c.id));
        }
        let pids = self.runtime.client(&c.id).pids().await.map_err(internal)?;
        let args = ps_args.unwrap_or_else(|| "-ef".to_string());
        let out = tokio::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .await
            .map_err(|e| internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            // As dockerd: the first line of ps's stderr says why it failed.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.trim().lines().next().unwrap_or("failed");
            return Err(internal(format!("ps: {why}")));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// Keeps the `ps` rows whose PID column is one of `pids` (Docker's `top`).
fn parse_ps(output: &str, pids: &[u32]) -> Result<ct::TopResponse> {
    let mut lines = output.lines();
    let header = lines.next().ok_or_else(|| internal("ps printed nothing"))?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<u32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        processes.push(row);
    }
    Ok(ct::TopResponse { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_filtering() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sh -c while true\nroot 11 1 0 10:00 ? 00:00:00 other\n";
        let top = parse_ps(out, &[10]).unwrap();
        assert_eq!(top.processes.len(), 1);
        assert_eq!(top.processes[0][7], "sh -c while true");
    }
}
