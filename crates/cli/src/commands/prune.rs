//! `berth system df`, `berth system prune`, `berth container prune`, `berth image prune`.

use std::io::Write;

use berth_client::{Body, Query};
use clap::Args;
use serde_json::Value;

use crate::commands::image::filters_json;
use crate::format::{human_size_prec, tabwrite};
use crate::util::{CliError, CmdResult, Ctx};

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
}

/// Sizes as `docker system df` prints them (go-units `HumanSize`).
fn size(n: i64) -> String {
    human_size_prec(n.max(0) as f64, 4)
}

fn reclaimable(r: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", size(r), r * 100 / total)
    } else {
        size(r)
    }
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

pub async fn df(ctx: &Ctx, a: DfArgs) -> CmdResult {
    let v: Value = ctx.client.get_json("/system/df", &Query::new()).await?;
    let images = list(&v, "Images");
    let containers = list(&v, "Containers");
    let volumes = list(&v, "Volumes");
    let layers = v["LayersSize"].as_i64().unwrap_or(0);
    let i64_of = |x: &Value, k: &str| x[k].as_i64().unwrap_or(0);
    let active_images: Vec<&Value> = images
        .iter()
        .filter(|i| i64_of(i, "Containers") > 0)
        .collect();
    let used: i64 = active_images.iter().map(|i| i64_of(i, "Size")).sum();
    let c_size: i64 = containers.iter().map(|c| i64_of(c, "SizeRw")).sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"] == "running" || c["State"] == "paused")
        .count();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|c| c["State"] != "running" && c["State"] != "paused")
        .map(|c| i64_of(c, "SizeRw"))
        .sum();
    let vsize = |x: &Value| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0);
    let vrefs = |x: &Value| x["UsageData"]["RefCount"].as_i64().unwrap_or(0);
    let v_size: i64 = volumes.iter().map(vsize).sum();
    let v_active = volumes.iter().filter(|x| vrefs(x) > 0).count();
    let v_reclaim: i64 = volumes.iter().filter(|x| vrefs(x) == 0).map(vsize).sum();
    if !a.verbose {
        let mut t = String::from("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n");
        t.push_str(&format!(
            "Images\t{}\t{}\t{}\t{}\n",
            images.len(),
            active_images.len(),
            size(layers),
            reclaimable(layers - used, layers)
        ));
        t.push_str(&format!(
            "Containers\t{}\t{}\t{}\t{}\n",
            containers.len(),
            c_active,
            size(c_size),
            reclaimable(c_reclaim, c_size)
        ));
        t.push_str(&format!(
            "Local Volumes\t{}\t{}\t{}\t{}\n",
            volumes.len(),
            v_active,
            size(v_size),
            reclaimable(v_reclaim, v_size)
        ));
        // Like docker: only unshared records count, reclaimable without a percentage.
        let bc = list(&v, "BuildCache");
        let unshared = || bc.iter().filter(|b| b["Shared"] != true);
        t.push_str(&format!(
            "Build Cache\t{}\t{}\t{}\t{}\n",
            bc.len(),
            bc.iter().filter(|b| b["InUse"] == true).count(),
            size(unshared().map(|b| i64_of(b, "Size")).sum()),
            size(
                unshared()
                    .filter(|b| b["InUse"] != true)
                    .map(|b| i64_of(b, "Size"))
                    .sum()
            )
        ));
        print!("{}", tabwrite(&t));
        return Ok(0);
    }
    println!("Images space usage:\n");
    let mut t = String::from("REPOSITORY\tTAG\tIMAGE ID\tSIZE\tCONTAINERS\n");
    for i in &images {
        let id = i["Id"].as_str().unwrap_or("");
        let short = id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>();
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let tags = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        for tag in tags {
            let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag.as_str(), "<none>"));
            t.push_str(&format!(
                "{repo}\t{tag}\t{short}\t{}\t{}\n",
                size(i64_of(i, "Size")),
                i64_of(i, "Containers")
            ));
        }
    }
    print!("{}", tabwrite(&t));
    println!("\nContainers space usage:\n");
    let mut t = String::from("CONTAINER ID\tIMAGE\tSIZE\tSTATUS\tNAMES\n");
    for c in &containers {
        let id: String = c["Id"].as_str().unwrap_or("").chars().take(12).collect();
        let name = c["Names"][0].as_str().unwrap_or("").trim_start_matches('/');
        t.push_str(&format!(
            "{id}\t{}\t{}\t{}\t{name}\n",
            c["Image"].as_str().unwrap_or(""),
            size(i64_of(c, "SizeRw")),
            c["Status"].as_str().unwrap_or("")
        ));
    }
    print!("{}", tabwrite(&t));
    println!("\nLocal Volumes space usage:\n");
    let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
    for x in &volumes {
        t.push_str(&format!(
            "{}\t{}\t{}\n",
            x["Name"].as_str().unwrap_or(""),
            vrefs(x),
            size(vsize(x))
        ));
    }
    print!("{}", tabwrite(&t));
    println!("\nBuild cache usage: 0B");
    Ok(0)
}

fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

/// Prints one prune section and returns the space it reclaimed.
fn report(title: &str, items: &[String]) {
    if !items.is_empty() {
        println!("{title}:");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn image_items(v: &Value) -> Vec<String> {
    v["ImagesDeleted"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    x["Untagged"]
                        .as_str()
                        .map(|u| format!("untagged: {u}"))
                        .or_else(|| x["Deleted"].as_str().map(|d| format!("deleted: {d}")))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn post(ctx: &Ctx, path: &str, filters: Option<String>) -> Result<Value, CliError> {
    let q = Query::new().add_opt("filters", filters);
    Ok(ctx.client.post_json(path, &q, Body::Empty).await?)
}

pub async fn container_prune(ctx: &Ctx, a: ContainerPruneArgs) -> CmdResult {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let v = post(ctx, "/containers/prune", filters_json(&a.filter, &[])?).await?;
    report("Deleted Containers", &strings(&v, "ContainersDeleted"));
    println!(
        "Total reclaimed space: {}",
        size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

pub async fn image_prune(ctx: &Ctx, a: ImagePruneArgs) -> CmdResult {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let extra = if a.all {
        vec![("dangling", "false".to_string())]
    } else {
        Vec::new()
    };
    let v = post(ctx, "/images/prune", filters_json(&a.filter, &extra)?).await?;
    report("Deleted Images", &image_items(&v));
    println!(
        "Total reclaimed space: {}",
        size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

pub async fn system_prune(ctx: &Ctx, a: SystemPruneArgs) -> CmdResult {
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        w.push_str(if a.all {
            "  - all images without at least one container associated to them\n  - all build cache\n"
        } else {
            "  - all dangling images\n  - unused build cache\n"
        });
        if !confirm(&w) {
            return Ok(0);
        }
    }
    let mut total = 0i64;
    let filters = filters_json(&a.filter, &[])?;
    let v = post(ctx, "/containers/prune", filters.clone()).await?;
    report("Deleted Containers", &strings(&v, "ContainersDeleted"));
    total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    // Networks are pruned by a daemon that has them; an older one answers 404.
    match post(ctx, "/networks/prune", filters.clone()).await {
        Ok(v) => report("Deleted Networks", &strings(&v, "NetworksDeleted")),
        Err(e) if e.msg.contains("page not found") => {}
        Err(e) => return Err(e),
    }
    if a.volumes {
        let extra = if a.all {
            vec![("all", "true".to_string())]
        } else {
            Vec::new()
        };
        let v = post(ctx, "/volumes/prune", filters_json(&a.filter, &extra)?).await?;
        report("Deleted Volumes", &strings(&v, "VolumesDeleted"));
        total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    let extra = if a.all {
        vec![("dangling", "false".to_string())]
    } else {
        Vec::new()
    };
    let v = post(ctx, "/images/prune", filters_json(&a.filter, &extra)?).await?;
    report("Deleted Images", &image_items(&v));
    total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    let v = post(ctx, "/build/prune", None).await?;
    report("Deleted build cache objects", &strings(&v, "CachesDeleted"));
    total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    println!("Total reclaimed space: {}", size(total));
    Ok(0)
}
