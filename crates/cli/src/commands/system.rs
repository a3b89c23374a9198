//! `version` and `info`.

use berth_client::Query;
use serde_json::{json, Value};

use crate::args::{InfoArgs, VersionArgs};
use crate::format::bytes_size;
use crate::template::{go_string, unescape_format, Template};
use crate::util::{daemon_err, CmdResult, Ctx};

fn client_info(ctx: &Ctx) -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": ctx.client.api_version(),
        "DefaultAPIVersion": berth_client::MAX_API_VERSION,
        "GoVersion": "",
        "GitCommit": "",
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "Context": "default",
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => go_string(other),
    }
}

pub async fn version(ctx: &Ctx, a: VersionArgs) -> CmdResult {
    let client = client_info(ctx);
    let server = ctx
        .client
        .get_json::<Value>("/version", &Query::new())
        .await;
    if let Some(f) = &a.format {
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        let t = Template::parse(&unescape_format(f))?;
        println!("{}", t.render(&data)?);
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(e.into()),
        };
    }
    let mut out = String::new();
    out.push_str("Client:\n");
    let row = |out: &mut String, indent: &str, k: &str, v: &str| {
        let key = format!("{indent}{k}:");
        out.push_str(&format!("{key:<20}{v}\n"));
    };
    row(&mut out, " ", "Version", &s(&client["Version"]));
    row(&mut out, " ", "API version", &s(&client["ApiVersion"]));
    row(
        &mut out,
        " ",
        "OS/Arch",
        &format!("{}/{}", s(&client["Os"]), s(&client["Arch"])),
    );
    row(&mut out, " ", "Context", "default");
    print!("{out}");
    let server = server?;
    let mut out = String::new();
    out.push_str(&format!("\nServer: {}\n", s(&server["Platform"]["Name"])).replace(": \n", ":\n"));
    let components = server["Components"].as_array().cloned().unwrap_or_default();
    if components.is_empty() {
        out.push_str(" Engine:\n");
        row(&mut out, "  ", "Version", &s(&server["Version"]));
        row(
            &mut out,
            "  ",
            "API version",
            &format!(
                "{} (minimum version {})",
                s(&server["ApiVersion"]),
                s(&server["MinAPIVersion"])
            ),
        );
        row(
            &mut out,
            "  ",
            "OS/Arch",
            &format!("{}/{}", s(&server["Os"]), s(&server["Arch"])),
        );
    }
    for c in components {
        out.push_str(&format!(" {}:\n", s(&c["Name"])));
        row(&mut out, "  ", "Version", &s(&c["Version"]));
        let d = &c["Details"];
        if c["Name"] == "Engine" {
            row(
                &mut out,
                "  ",
                "API version",
                &format!(
                    "{} (minimum version {})",
                    s(&d["ApiVersion"]),
                    s(&d["MinAPIVersion"])
                ),
            );
            for (k, label) in [
                ("GoVersion", "Go version"),
                ("GitCommit", "Git commit"),
                ("BuildTime", "Built"),
                ("Os", "OS/Arch"),
                ("Experimental", "Experimental"),
            ] {
                if k == "Os" {
                    row(
                        &mut out,
                        "  ",
                        label,
                        &format!("{}/{}", s(&d["Os"]), s(&d["Arch"])),
                    );
                } else if !d[k].is_null() {
                    row(&mut out, "  ", label, &s(&d[k]));
                }
            }
        } else if let Some(commit) = d.get("GitCommit") {
            row(&mut out, "  ", "GitCommit", &s(commit));
        }
    }
    print!("{out}");
    Ok(0)
}

pub async fn info(ctx: &Ctx, a: InfoArgs) -> CmdResult {
    let info = ctx.client.get_json::<Value>("/info", &Query::new()).await;
    if let Some(f) = &a.format {
        let f = unescape_format(f);
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        let t = Template::parse(&f)?;
        let info = info?;
        println!("{}", t.render(&info)?);
        return Ok(0);
    }
    let mut out = String::new();
    out.push_str("Client:\n");
    out.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    out.push_str(" Context:    default\n");
    out.push_str(" Debug Mode: false\n\n");
    out.push_str("Server:\n");
    let i = match info {
        Ok(i) => i,
        Err(e) => {
            print!("{out}");
            return Err(crate::util::CliError::new(1, daemon_err(&e)));
        }
    };
    let line = |out: &mut String, k: &str, v: &Value| {
        if !v.is_null() {
            out.push_str(&format!(" {k}: {}\n", s(v)));
        }
    };
    line(&mut out, "Containers", &i["Containers"]);
    out.push_str(&format!("  Running: {}\n", s(&i["ContainersRunning"])));
    out.push_str(&format!("  Paused: {}\n", s(&i["ContainersPaused"])));
    out.push_str(&format!("  Stopped: {}\n", s(&i["ContainersStopped"])));
    line(&mut out, "Images", &i["Images"]);
    line(&mut out, "Server Version", &i["ServerVersion"]);
    line(&mut out, "Storage Driver", &i["Driver"]);
    if let Some(status) = i["DriverStatus"].as_array() {
        for kv in status {
            if let Some([k, v]) = kv.as_array().map(|a| a.as_slice()) {
                out.push_str(&format!("  {}: {}\n", s(k), s(v)));
            }
        }
    }
    line(&mut out, "Logging Driver", &i["LoggingDriver"]);
    line(&mut out, "Cgroup Driver", &i["CgroupDriver"]);
    line(&mut out, "Cgroup Version", &i["CgroupVersion"]);
    if let Some(rt) = i["Runtimes"].as_object() {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        out.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    line(&mut out, "Default Runtime", &i["DefaultRuntime"]);
    if let Some(opts) = i["SecurityOptions"].as_array() {
        out.push_str(" Security Options:\n");
        for o in opts {
            let o = s(o);
            let name = o
                .split(',')
                .next()
                .unwrap_or("")
                .trim_start_matches("name=");
            out.push_str(&format!("  {name}\n"));
        }
    }
    line(&mut out, "Kernel Version", &i["KernelVersion"]);
    line(&mut out, "Operating System", &i["OperatingSystem"]);
    line(&mut out, "OSType", &i["OSType"]);
    line(&mut out, "Architecture", &i["Architecture"]);
    line(&mut out, "CPUs", &i["NCPU"]);
    if let Some(m) = i["MemTotal"].as_f64() {
        out.push_str(&format!(" Total Memory: {}\n", bytes_size(m)));
    }
    line(&mut out, "Name", &i["Name"]);
    line(&mut out, "ID", &i["ID"]);
    line(&mut out, "Docker Root Dir", &i["DockerRootDir"]);
    out.push_str(&format!(
        " Debug Mode: {}\n",
        i["Debug"].as_bool().unwrap_or(false)
    ));
    line(&mut out, "Experimental", &i["ExperimentalBuild"]);
    if let Some(cidrs) = i["RegistryConfig"]["InsecureRegistryCIDRs"].as_array() {
        out.push_str(" Insecure Registries:\n");
        for c in cidrs {
            out.push_str(&format!("  {}\n", s(c)));
        }
    }
    line(&mut out, "Live Restore Enabled", &i["LiveRestoreEnabled"]);
    print!("{out}");
    if let Some(w) = i["Warnings"].as_array() {
        for w in w {
            eprintln!("{}", s(w));
        }
    }
    Ok(0)
}

/// `berth events`: the daemon's event stream, printed as docker prints it.
pub async fn events(ctx: &Ctx, a: crate::args::EventsArgs) -> CmdResult {
    let template = match a.format.as_deref() {
        Some(f) => Some(Template::parse(&unescape_format(f)).map_err(|e| {
            crate::util::CliError::new(125, format!("template parsing error: {e}"))
        })?),
        None => None,
    };
    let q = Query::new()
        .add_opt(
            "since",
            a.since.as_deref().map(crate::util::parse_timestamp),
        )
        .add_opt(
            "until",
            a.until.as_deref().map(crate::util::parse_timestamp),
        )
        .add_opt(
            "filters",
            crate::commands::image::filters_json(&a.filter, &[])?,
        );
    let mut stream = ctx
        .client
        .json_stream(http::Method::GET, "/events", &q, berth_client::Body::Empty)
        .await?;
    let mut out = std::io::stdout();
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        let line = match &template {
            Some(t) => t
                .render(&ev)
                .map_err(|e| crate::util::CliError::new(1, e.to_string()))?,
            None => event_line(&ev, &chrono::Local),
        };
        use std::io::Write;
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(0)
}

/// Docker's default event line: `<time> <type> <action> <id> (k=v, ...)`, the time in the
/// given zone with nanoseconds, attributes sorted by key.
fn event_line<Tz: chrono::TimeZone>(ev: &Value, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let nanos = ev["timeNano"]
        .as_i64()
        .filter(|n| *n != 0)
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = chrono::DateTime::from_timestamp(
        nanos.div_euclid(1_000_000_000),
        u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    )
    .unwrap_or_default()
    .with_timezone(tz);
    let mut stamp = t.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string();
    if stamp.ends_with("+00:00") {
        stamp.truncate(stamp.len() - 6);
        stamp.push('Z');
    }
    let mut line = format!(
        "{stamp} {} {} {}",
        go_string(&ev["Type"]),
        go_string(&ev["Action"]),
        go_string(&ev["Actor"]["ID"])
    );
    if let Some(attrs) = ev["Actor"]["Attributes"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        let mut kv: Vec<(&String, String)> = attrs.iter().map(|(k, v)| (k, go_string(v))).collect();
        kv.sort();
        let parts: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line
}

#[cfg(test)]
mod events_tests {
    use super::*;

    #[test]
    fn default_line_is_dockers() {
        let ev = json!({
            "Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
            "time": 1700000000, "timeNano": 1700000000123456789i64
        });
        assert_eq!(
            event_line(&ev, &chrono::Utc),
            "2023-11-14T22:13:20.123456789Z container start abc (image=busybox, name=web)"
        );
        let off = chrono::FixedOffset::east_opt(3600).unwrap();
        let ev = json!({"Type": "network", "Action": "create", "Actor": {"ID": "n1"}, "time": 1700000000});
        assert_eq!(
            event_line(&ev, &off),
            "2023-11-14T23:13:20.000000000+01:00 network create n1"
        );
    }
}
