//! `berth port` and `berth network ...`.

use berth_client::Query;
use serde_json::Value;

use crate::util::{CliError, CmdResult, Ctx};

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub private_port: Option<String>,
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`, printed as docker prints it.
pub async fn port(ctx: &Ctx, a: PortArgs) -> CmdResult {
    let v: Value = ctx
        .client
        .get_json(&format!("/containers/{}/json", a.container), &Query::new())
        .await?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    match &a.private_port {
        Some(want) => {
            let key = if want.contains('/') {
                want.clone()
            } else {
                format!("{want}/tcp")
            };
            let bindings = ports.get(&key).and_then(Value::as_array).cloned();
            let Some(bindings) = bindings.filter(|b| !b.is_empty()) else {
                return Err(CliError::new(
                    1,
                    format!(
                        "Error: No public port '{key}' published for {}",
                        a.container
                    ),
                ));
            };
            for b in bindings {
                lines.push(host_addr(&b));
            }
        }
        None => {
            for (key, bindings) in &ports {
                for b in bindings.as_array().cloned().unwrap_or_default() {
                    lines.push(format!("{key} -> {}", host_addr(&b)));
                }
            }
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

fn host_addr(b: &Value) -> String {
    let ip = b["HostIp"].as_str().unwrap_or("");
    let port = b["HostPort"].as_str().unwrap_or("");
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}
