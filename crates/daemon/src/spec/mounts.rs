//! Docker's default mounts, `--tmpfs`, and the merge of user mounts over the defaults.

use std::path::{Path, PathBuf};

use berth_api_types::container::HostConfig;
use oci_spec::runtime::{Mount, MountBuilder};

use super::namespaces::NsModes;
use super::{build_err, SpecError, SpecInput, DEFAULT_SHM_SIZE};

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_string()).collect::<Vec<_>>())
        .build()
        .map_err(build_err)
}

pub(super) fn bind(dest: &str, source: &Path, readonly: bool) -> Result<Mount, SpecError> {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        opts.push("ro".into());
    }
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(opts)
        .build()
        .map_err(build_err)
}

/// `--tmpfs` options merged over Docker's defaults (`noexec,nosuid,nodev`): a user flag wins
/// over its opposite.
fn tmpfs_options(user: &str) -> Vec<String> {
    let mut opts: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in user.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "noexec" => Some("exec"),
            "suid" => Some("nosuid"),
            "nosuid" => Some("suid"),
            "dev" => Some("nodev"),
            "nodev" => Some("dev"),
            "rw" => Some("ro"),
            "ro" => Some("rw"),
            _ => None,
        };
        if let Some(op) = opposite {
            opts.retain(|x| x != op);
        }
        if let Some((key, _)) = o.split_once('=') {
            opts.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key));
        }
        if !opts.iter().any(|x| x == o) {
            opts.push(o.to_string());
        }
    }
    opts
}

/// Docker's default mounts, in Docker's order, then the `/etc` files and `--tmpfs` entries.
pub(super) fn base_mounts(input: &SpecInput, ns: &NsModes) -> Result<Vec<Mount>, SpecError> {
    let hc = input.host_config;
    let privileged = hc.privileged;
    let sys_mode = if privileged { "rw" } else { "ro" };
    let shm_size = if hc.shm_size > 0 {
        hc.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    if ns.host_ipc {
        mounts.push(bind("/dev/shm", Path::new("/dev/shm"), false)?);
    } else {
        let size = format!("size={shm_size}");
        mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &size],
        )?);
    }
    // Docker makes these follow the rootfs: read-only with --read-only.
    let ro = hc.readonly_rootfs;
    mounts.push(bind("/etc/resolv.conf", input.resolv_conf_path, ro)?);
    mounts.push(bind("/etc/hostname", input.hostname_path, ro)?);
    mounts.push(bind("/etc/hosts", input.hosts_path, ro)?);
    Ok(mounts)
}

pub(super) fn tmpfs_mounts(hc: &HostConfig) -> Result<Vec<Mount>, SpecError> {
    let mut out = Vec::new();
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        if !dest.starts_with('/') || dest == "/" {
            return Err(SpecError::InvalidParameter(format!(
                "invalid tmpfs mount destination {dest:?}: must be an absolute path other than /"
            )));
        }
        MountBuilder::default()
            .destination(dest)
            .typ("tmpfs")
            .source("tmpfs")
            .options(tmpfs_options(opts))
            .build()
            .map_err(build_err)
            .map(|m| out.push(m))?;
    }
    Ok(out)
}

/// Docker's merge of user mounts over the defaults: a user mount replaces any default with the
/// same destination (or anything under `/dev` when it mounts `/dev` itself), and user mounts are
/// applied parents first.
pub fn merge_mounts(defaults: Vec<Mount>, mut user: Vec<Mount>) -> Vec<Mount> {
    let user_dests: Vec<PathBuf> = user.iter().map(|m| m.destination().clone()).collect();
    let mut out: Vec<Mount> = defaults
        .into_iter()
        .filter(|d| {
            !user_dests.iter().any(|u| {
                u == d.destination()
                    || (u == Path::new("/dev") && d.destination().starts_with("/dev"))
            })
        })
        .collect();
    user.sort_by_key(|m| m.destination().components().count());
    out.extend(user);
    out
}
