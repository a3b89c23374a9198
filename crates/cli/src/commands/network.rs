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

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network
    Create(NetCreateArgs),
    /// List networks
    #[command(visible_aliases = ["list"])]
    Ls(NetLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetInspectArgs),
    /// Connect a container to a network
    Connect(NetConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetDisconnectArgs),
    /// Remove one or more networks
    #[command(visible_aliases = ["remove"])]
    Rm(NetRmArgs),
    /// Remove all unused networks
    Prune(NetPruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct NetCreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Enable or disable IPv6 address assignment
    #[arg(long)]
    pub ipv6: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct NetLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct NetInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NetConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct NetDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct NetRmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NetPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

fn key_values(list: &[String]) -> serde_json::Map<String, Value> {
    list.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect()
}

pub async fn network(ctx: &Ctx, cmd: NetworkCmd) -> CmdResult {
    use berth_client::Body;
    use serde_json::json;
    match cmd {
        NetworkCmd::Create(a) => {
            let mut configs = Vec::new();
            for (i, subnet) in a.subnet.iter().enumerate() {
                let mut c = json!({ "Subnet": subnet });
                if let Some(gw) = a.gateway.get(i) {
                    c["Gateway"] = json!(gw);
                }
                if let Some(r) = a.ip_range.get(i) {
                    c["IPRange"] = json!(r);
                }
                configs.push(c);
            }
            if a.subnet.is_empty() && !a.gateway.is_empty() {
                return Err(CliError::new(
                    1,
                    "every ip-range or gateway must have a corresponding subnet",
                ));
            }
            let body = json!({
                "Name": a.name,
                "Driver": a.driver,
                "Internal": a.internal,
                "EnableIPv6": a.ipv6,
                "IPAM": { "Driver": "default", "Config": configs },
                "Options": key_values(&a.opt),
                "Labels": key_values(&a.label),
            });
            let v: Value = ctx
                .client
                .post_json("/networks/create", &Query::new(), Body::json(&body)?)
                .await?;
            println!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCmd::Ls(a) => {
            let filters = crate::commands::image::filters_json(&a.filter, &[])?;
            let q = Query::new().add_opt("filters", filters);
            let mut list: Vec<Value> = ctx.client.get_json("/networks", &q).await?;
            list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            let id = |n: &Value| {
                let id = n["Id"].as_str().unwrap_or("").to_string();
                if a.no_trunc {
                    id
                } else {
                    id.chars().take(12).collect()
                }
            };
            if a.quiet {
                for n in &list {
                    println!("{}", id(n));
                }
                return Ok(0);
            }
            let fmt = crate::format::ListFormat::parse(
                a.format.as_deref(),
                "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
            )?;
            let rows: Vec<Value> = list
                .iter()
                .map(|n| {
                    json!({
                        "ID": id(n), "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                        "IPv6": n["EnableIPv6"], "Internal": n["Internal"], "CreatedAt": n["Created"],
                    })
                })
                .collect();
            let headers = json!({
                "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                "IPv6": "IPV6", "Internal": "INTERNAL", "CreatedAt": "CREATED",
            });
            print!("{}", fmt.render(&headers, &rows)?);
            Ok(0)
        }
        NetworkCmd::Inspect(a) => {
            let template = crate::format::inspect_template(a.format.as_deref())?;
            let mut found = Vec::new();
            let mut code = 0;
            for n in &a.networks {
                match ctx
                    .client
                    .get_bytes(&format!("/networks/{n}"), &Query::new())
                    .await
                {
                    Ok(b) => found.push(b),
                    Err(e) => {
                        eprintln!("{}", crate::util::daemon_err(&e));
                        code = 1;
                    }
                }
            }
            crate::format::print_inspected(&found, template.as_ref())?;
            if code != 0 {
                return Err(CliError::status(code));
            }
            Ok(0)
        }
        NetworkCmd::Connect(a) => {
            let mut ep = json!({ "Aliases": a.alias });
            if a.ip.is_some() || a.ip6.is_some() {
                ep["IPAMConfig"] = json!({
                    "IPv4Address": a.ip.clone().unwrap_or_default(),
                    "IPv6Address": a.ip6.clone().unwrap_or_default(),
                });
            }
            let body = json!({ "Container": a.container, "EndpointConfig": ep });
            ctx.client
                .post(
                    &format!("/networks/{}/connect", a.network),
                    &Query::new(),
                    Body::json(&body)?,
                )
                .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            let body = json!({ "Container": a.container, "Force": a.force });
            ctx.client
                .post(
                    &format!("/networks/{}/disconnect", a.network),
                    &Query::new(),
                    Body::json(&body)?,
                )
                .await?;
            Ok(0)
        }
        NetworkCmd::Rm(a) => {
            let mut code = 0;
            for n in &a.networks {
                match ctx
                    .client
                    .delete(&format!("/networks/{n}"), &Query::new())
                    .await
                {
                    Ok(_) => println!("{n}"),
                    Err(e) if a.force && e.is_not_found() => {}
                    Err(e) => {
                        eprintln!("{}", crate::util::daemon_err(&e));
                        code = 1;
                    }
                }
            }
            if code != 0 {
                return Err(CliError::status(code));
            }
            Ok(0)
        }
        NetworkCmd::Prune(a) => {
            if !a.force {
                use std::io::IsTerminal;
                if !std::io::stdin().is_terminal() {
                    return Err(CliError::new(
                        1,
                        "network prune needs -f without a terminal to confirm",
                    ));
                }
                eprint!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    return Ok(0);
                }
            }
            let (_, raw) = ctx
                .client
                .post("/networks/prune", &Query::new(), Body::Empty)
                .await?;
            let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            let deleted = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for n in deleted {
                    println!("{}", n.as_str().unwrap_or(""));
                }
            }
            Ok(0)
        }
    }
}
