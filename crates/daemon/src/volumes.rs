//! Volumes (the `local` driver) and the mounts of a container: `-v`/`Binds`, `--mount`,
//! image `VOLUME`s, `--volumes-from`; copy-up of image content into a new volume at start.
//!
//! A volume is a directory `<data-root>/volumes/<name>/_data` recorded in the `volumes` table.
//! With driver options (`type`, `device`, `o`) the `_data` directory is a mount point: the
//! filesystem is mounted when a container using it starts and unmounted when the last running
//! user exits, as Docker's local driver does.
//!
//! A container's mounts are planned once, at create, into [`MountRecord`]s kept in its record;
//! every start turns them into OCI mounts.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_api_types::container::{self as ct, Config, HostConfig};
use berth_api_types::volume::{CreateRequest, ListResponse, PruneResponse, UsageData, Volume};
use berth_api_types::ApiError;
use oci_spec::runtime::{Mount, MountBuilder};
use serde::{Deserialize, Serialize};

use crate::model::Container;
use crate::model::MountRecord;
use crate::mount_spec::{
    check_target, clean, parse_api_mount, parse_bind, validate_driver_opts, validate_volume_name,
};
use crate::mountinfo::is_mount_point;
use crate::{internal, lock, Daemon, Result};

/// The label Docker puts on anonymous volumes (prune without `all` only removes these).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

fn random_name() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Mount flags and data from a local volume's `o` option.
fn mount_flags(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Copies `src`'s contents into the empty directory `dst`, keeping owners, modes, symlinks and
/// mtimes (Docker's copy-up of image content into a new volume). Never follows a symlink.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let md = std::fs::symlink_metadata(src)?;
    copy_meta(&md, dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let md = std::fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from)?;
            std::os::unix::fs::symlink(&target, &to)?;
            let _ = std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()));
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            copy_meta(&md, &to)?;
        }
        // Devices, fifos and sockets are not copied into volumes.
    }
    Ok(())
}

fn copy_meta(md: &std::fs::Metadata, path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(md.uid()), Some(md.gid()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    let mtime = nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec());
    let _ = nix::sys::stat::utimensat(
        None,
        path,
        &mtime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
    Ok(())
}

/// Docker's volume filters: `dangling`, `name`, `label`, `driver` (and `label!` for prune).
struct VolumeFilters {
    dangling: Option<bool>,
    names: Vec<String>,
    labels: Vec<String>,
    not_labels: Vec<String>,
    drivers: Vec<String>,
    all: bool,
}

impl VolumeFilters {
    fn parse(filters: &[(String, Vec<String>)], prune: bool) -> Result<VolumeFilters> {
        let mut f = VolumeFilters {
            dangling: None,
            names: vec![],
            labels: vec![],
            not_labels: vec![],
            drivers: vec![],
            all: false,
        };
        let bool_of = |k: &str, v: &str| match v {
            "1" | "true" | "True" | "TRUE" => Ok(true),
            "0" | "false" | "False" | "FALSE" => Ok(false),
            _ => Err(ApiError::invalid(format!(
                "invalid filter '{k}={v}': value must be 'true' or 'false'"
            ))),
        };
        for (k, vals) in filters {
            match (k.as_str(), prune) {
                ("dangling", false) => {
                    for v in vals {
                        f.dangling = Some(bool_of(k, v)?);
                    }
                }
                ("name", false) => f.names.extend(vals.iter().cloned()),
                ("driver", false) => f.drivers.extend(vals.iter().cloned()),
                ("label", _) => f.labels.extend(vals.iter().cloned()),
                ("label!", true) => f.not_labels.extend(vals.iter().cloned()),
                ("all", true) => {
                    for v in vals {
                        f.all = bool_of(k, v)?;
                    }
                }
                _ => return Err(ApiError::invalid(format!("invalid filter '{k}'"))),
            }
        }
        Ok(f)
    }

    fn label_match(labels: &BTreeMap<String, String>, l: &str) -> bool {
        match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        }
    }

    fn matches(&self, v: &VolumeRecord, in_use: bool) -> bool {
        if self.dangling.is_some_and(|d| d == in_use) {
            return false;
        }
        if !self.names.is_empty() && !self.names.iter().any(|n| v.name.contains(n.as_str())) {
            return false;
        }
        if !self.drivers.is_empty() && !self.drivers.contains(&v.driver) {
            return false;
        }
        if !self.labels.iter().all(|l| Self::label_match(&v.labels, l)) {
            return false;
        }
        if self
            .not_labels
            .iter()
            .any(|l| Self::label_match(&v.labels, l))
        {
            return false;
        }
        true
    }
}

fn no_such_volume(name: &str) -> ApiError {
    ApiError::not_found(format!("get {name}: no such volume"))
}

impl Daemon {
    fn volumes_dir(&self) -> PathBuf {
        self.cfg.data_root.join("volumes")
    }

    pub(crate) fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name).join("_data")
    }

    fn volume_view(&self, v: &VolumeRecord, usage: bool) -> Volume {
        let data = self.volume_data(&v.name);
        Volume {
            created_at: v.created_at.clone(),
            driver: v.driver.clone(),
            labels: Some(v.labels.clone()),
            mountpoint: data.display().to_string(),
            name: v.name.clone(),
            options: (!v.options.is_empty()).then(|| v.options.clone()),
            scope: "local".into(),
            usage_data: usage.then(|| UsageData {
                size: if v.options.is_empty() {
                    crate::sys::dir_size(&data) as i64
                } else {
                    -1
                },
                ref_count: self.volume_users(&v.name).len() as i64,
            }),
        }
    }

    fn volume_record(&self, name: &str) -> Result<Option<VolumeRecord>> {
        Ok(self.store.volume(name)?)
    }

    /// Ids of the containers (running or not) whose mounts use volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        lock(&self.containers)
            .values()
            .filter(|c| {
                c.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// Creates a volume, or returns the existing one with that name.
    fn create_volume_record(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<VolumeRecord> {
        let _g = lock(&self.volume_lock);
        if let Some(v) = self.volume_record(name)? {
            return Ok(v);
        }
        let data = self.volume_data(name);
        std::fs::create_dir_all(&data)
            .map_err(|e| internal(format!("creating volume {name}: {e}")))?;
        // As dockerd: a remapped daemon's volumes belong to its containers' root.
        if let Some(m) = &self.cfg.userns_remap {
            self.remap_fs
                .chown_root(&data, m)
                .map_err(|e| internal(format!("creating volume {name}: {e}")))?;
        }
        let _ = std::fs::set_permissions(self.volumes_dir(), PermissionsExt::from_mode(0o701));
        let v = VolumeRecord {
            name: name.to_string(),
            driver: "local".into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
        };
        if let Err(e) = self.store.put_volume(name, &v) {
            let _ = std::fs::remove_dir_all(self.volumes_dir().join(name));
            return Err(internal(e));
        }
        self.emit_volume(name, "create", &[("driver", "local".into())]);
        Ok(v)
    }

    pub fn volume_create(&self, req: CreateRequest) -> Result<Volume> {
        if !matches!(req.driver.as_str(), "" | "local") {
            return Err(ApiError::not_found(format!(
                "create {}: error looking up volume plugin {}: plugin {:?} not found",
                req.name, req.driver, req.driver
            )));
        }
        let name = if req.name.is_empty() {
            random_name()
        } else {
            req.name.clone()
        };
        validate_volume_name(&name)
            .map_err(|e| ApiError::invalid(format!("create {name}: {e}")))?;
        let opts = req.driver_opts.unwrap_or_default();
        validate_driver_opts(&opts)?;
        let v = self.create_volume_record(&name, req.labels.unwrap_or_default(), opts)?;
        Ok(self.volume_view(&v, false))
    }

    pub fn volume_list(&self, filters: &[(String, Vec<String>)]) -> Result<ListResponse> {
        let f = VolumeFilters::parse(filters, false)?;
        let mut all: Vec<VolumeRecord> = self.store.volumes()?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let volumes = all
            .iter()
            .filter(|v| f.matches(v, !self.volume_users(&v.name).is_empty()))
            .map(|v| self.volume_view(v, false))
            .collect();
        Ok(ListResponse {
            volumes,
            warnings: Vec::new(),
        })
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Volume> {
        let v = self
            .volume_record(name)?
            .ok_or_else(|| no_such_volume(name))?;
        Ok(self.volume_view(&v, false))
    }

    /// Every volume with its size and reference count (`system df`).
    pub fn volume_usage(&self) -> Result<Vec<Volume>> {
        let all: Vec<VolumeRecord> = self.store.volumes()?;
        Ok(all.iter().map(|v| self.volume_view(v, true)).collect())
    }

    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let Some(v) = self.volume_record(name)? else {
            return if force {
                Ok(())
            } else {
                Err(no_such_volume(name))
            };
        };
        self.destroy_volume(&v)
    }

    /// Removes a volume nobody uses (409 otherwise).
    fn destroy_volume(&self, v: &VolumeRecord) -> Result<()> {
        let _g = lock(&self.volume_lock);
        let users = self.volume_users(&v.name);
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {}: volume is in use - [{}]",
                v.name,
                users.join(", ")
            )));
        }
        let data = self.volume_data(&v.name);
        while is_mount_point(&data) {
            nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| internal(format!("unmounting volume {}: {e}", v.name)))?;
        }
        self.store.delete_volume(&v.name)?;
        if let Err(e) = std::fs::remove_dir_all(self.volumes_dir().join(&v.name)) {
            tracing::warn!(volume = %v.name, "removing volume directory: {e}");
        }
        self.emit_volume(&v.name, "destroy", &[("driver", v.driver.clone())]);
        Ok(())
    }

    /// Removes unused volumes: anonymous ones, and named ones too with `named_too` (API < 1.42)
    /// or the filter `all=true`.
    pub fn volume_prune(
        &self,
        filters: &[(String, Vec<String>)],
        named_too: bool,
    ) -> Result<PruneResponse> {
        let f = VolumeFilters::parse(filters, true)?;
        let all: Vec<VolumeRecord> = self.store.volumes()?;
        let mut out = PruneResponse::default();
        for v in all {
            if !f.all && !named_too && !v.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !self.volume_users(&v.name).is_empty() || !f.matches(&v, false) {
                continue;
            }
            let size = if v.options.is_empty() {
                crate::sys::dir_size(&self.volume_data(&v.name))
            } else {
                0
            };
            if self.destroy_volume(&v).is_ok() {
                out.volumes_deleted.push(v.name.clone());
                out.space_reclaimed += size;
            }
        }
        Ok(out)
    }

    /// Plans a new container's mounts: `--volumes-from`, then `Binds`, then `Mounts`, then the
    /// image's and the request's `Volumes` as anonymous volumes. Everything is validated before
    /// any volume is created, so a bad request changes nothing.
    pub(crate) fn plan_mounts(&self, config: &Config, hc: &HostConfig) -> Result<Vec<MountRecord>> {
        let mut planned: BTreeMap<String, MountRecord> = BTreeMap::new();
        for spec in hc.volumes_from.iter().flatten() {
            let (who, mode) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
            let force_ro = match mode {
                "" | "rw" => None,
                "ro" => Some(false),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "invalid mode for volumes-from: {mode}"
                    )))
                }
            };
            // 400, as dockerd answers: the CLI takes any 404 from a create for a missing
            // image and tries to pull it.
            let from = self
                .resolve_container(who)
                .map_err(|e| ApiError::invalid(e.message))?;
            for m in from.mounts.iter().filter(|m| m.kind != "tmpfs") {
                let mut m = m.clone();
                if let Some(rw) = force_ro {
                    m.rw = rw;
                }
                m.copy_data = false;
                // Shared with the other container: never removed with this one.
                m.anonymous = false;
                planned.insert(m.destination.clone(), m);
            }
        }
        let mut explicit: Vec<String> = Vec::new();
        for b in hc.binds.iter().flatten() {
            let mut m = parse_bind(b)?;
            // dockerd's setBindModeIfNull: a named volume of the local driver given in `-v`
            // without a mode shows "z" (SELinux shared label) in inspect's Mounts.
            if m.kind == "volume" && m.mode.is_empty() {
                m.mode = "z".into();
            }
            if explicit.contains(&m.destination) {
                return Err(ApiError::invalid(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
            explicit.push(m.destination.clone());
            planned.insert(m.destination.clone(), m);
        }
        for am in hc.mounts.iter().flatten() {
            let m = parse_api_mount(am)?;
            if explicit.contains(&m.destination) {
                return Err(ApiError::invalid(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
            explicit.push(m.destination.clone());
            planned.insert(m.destination.clone(), m);
        }
        let tmpfs: Vec<String> = hc.tmpfs.iter().flatten().map(|(k, _)| clean(k)).collect();
        for dest in config.volumes.iter().flatten().map(|(k, _)| k) {
            check_target("volume", dest)?;
            let dest = clean(dest);
            if planned.contains_key(&dest) || tmpfs.contains(&dest) {
                continue;
            }
            planned.insert(
                dest.clone(),
                MountRecord {
                    kind: "volume".into(),
                    destination: dest,
                    rw: true,
                    copy_data: true,
                    anonymous: true,
                    ..Default::default()
                },
            );
        }
        // New volumes get the container's volume driver; only the local one exists.
        if !matches!(hc.volume_driver.as_str(), "" | "local") {
            for m in planned.values().filter(|m| m.kind == "volume") {
                if m.name.is_empty() || self.volume_record(&m.name)?.is_none() {
                    let name = if m.name.is_empty() {
                        &m.destination
                    } else {
                        &m.name
                    };
                    return Err(ApiError::invalid(format!(
                        "create {name}: error looking up volume plugin {0}: plugin {0:?} not found",
                        hc.volume_driver
                    )));
                }
            }
        }
        // Validation is over: create what is missing.
        let mut out = Vec::new();
        for (_, mut m) in planned {
            if m.kind == "volume" {
                if m.name.is_empty() {
                    m.name = random_name();
                    let labels = BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]);
                    self.create_volume_record(&m.name, labels, BTreeMap::new())?;
                } else {
                    self.create_volume_record(&m.name, BTreeMap::new(), BTreeMap::new())?;
                }
                m.source = self.volume_data(&m.name).display().to_string();
            }
            out.push(m);
        }
        Ok(out)
    }

    /// The OCI mounts of a starting container (its rootfs is mounted): mounts volumes that have
    /// driver options, copies image content into empty new volumes, creates missing `-v` bind
    /// sources.
    pub(crate) fn start_mounts(&self, c: &Container) -> Result<Vec<Mount>> {
        let rootfs = self.runtime.rootfs(&c.id);
        let mut out = Vec::new();
        for m in &c.mounts {
            let mut opts: Vec<String> = Vec::new();
            let (typ, source) = match m.kind.as_str() {
                "tmpfs" => {
                    opts.extend(m.tmpfs_options.iter().cloned());
                    ("tmpfs".to_string(), "tmpfs".to_string())
                }
                "bind" => {
                    if !Path::new(&m.source).exists() {
                        if !m.create_source {
                            return Err(ApiError::invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                m.source
                            )));
                        }
                        std::fs::create_dir_all(&m.source).map_err(|e| {
                            internal(format!("creating bind source {}: {e}", m.source))
                        })?;
                    }
                    check_propagation_source(&m.source, &m.propagation)?;
                    opts.push("rbind".into());
                    opts.push(m.propagation.clone());
                    if !m.rw {
                        opts.extend(read_only_options(m, self.host.sys.kernel.mount_setattr)?);
                    }
                    ("bind".to_string(), m.source.clone())
                }
                _ => {
                    let v = self
                        .volume_record(&m.name)?
                        .ok_or_else(|| no_such_volume(&m.name))?;
                    let data = self.volume_data(&v.name);
                    self.mount_volume_fs(&v, &data)?;
                    if m.copy_data {
                        self.copy_up(&rootfs, &m.destination, &data);
                    }
                    opts.push("rbind".into());
                    opts.push("rprivate".into());
                    if !m.rw {
                        opts.push("ro".into());
                    }
                    self.emit_volume(
                        &v.name,
                        "mount",
                        &[
                            ("container", c.id.clone()),
                            ("destination", m.destination.clone()),
                            ("driver", v.driver.clone()),
                            ("propagation", m.propagation.clone()),
                            ("read/write", m.rw.to_string()),
                        ],
                    );
                    ("bind".to_string(), data.display().to_string())
                }
            };
            let mount = MountBuilder::default()
                .destination(&m.destination)
                .typ(typ)
                .source(source)
                .options(opts)
                .build()
                .map_err(internal)?;
            out.push(mount);
        }
        // A mount over `/etc` (or another parent of the generated files) would hide the
        // hostname/hosts/resolv.conf binds, which the spec puts before user mounts. Docker sorts
        // them together by depth; listing them here as user mounts does the same.
        let etc = [
            ("/etc/resolv.conf", self.runtime.resolv_conf_path(&c.id)),
            ("/etc/hostname", self.runtime.hostname_path(&c.id)),
            ("/etc/hosts", self.runtime.hosts_path(&c.id)),
        ];
        for (dest, src) in etc {
            let covered = c
                .mounts
                .iter()
                .any(|m| Path::new(dest).starts_with(&m.destination) && m.destination != dest);
            if !covered {
                continue;
            }
            let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
            if c.host_config.readonly_rootfs {
                opts.push("ro".into());
            }
            let mount = MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(src)
                .options(opts)
                .build()
                .map_err(internal)?;
            out.push(mount);
        }
        Ok(out)
    }

    fn mount_volume_fs(&self, v: &VolumeRecord, data: &Path) -> Result<()> {
        let Some(typ) = v.options.get("type").filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        if is_mount_point(data) {
            return Ok(());
        }
        let device = v.options.get("device").cloned().unwrap_or_default();
        let (flags, opts) = mount_flags(v.options.get("o").map(String::as_str).unwrap_or(""));
        nix::mount::mount(
            Some(device.as_str()),
            data,
            Some(typ.as_str()),
            flags,
            (!opts.is_empty()).then_some(opts.as_str()),
        )
        .map_err(|e| {
            internal(format!(
                "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {opts}: {e}",
                v.name,
                data.display(),
                flags.bits()
            ))
        })
    }

    /// Docker's copy-up: an empty volume takes the image's content at the mount path.
    fn copy_up(&self, rootfs: &Path, dest: &str, data: &Path) {
        let empty = std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_none());
        if !empty {
            return;
        }
        let Ok(src) = crate::sys::resolve_in_root(rootfs, Path::new(dest)) else {
            return;
        };
        if !std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir()) {
            return;
        }
        if let Err(e) = copy_tree(&src, data) {
            tracing::warn!(path = dest, "copying image content into volume: {e}");
        }
    }

    /// After a container stopped: unmount event per volume, and unmount driver-option volumes
    /// no running container uses any more.
    pub(crate) fn release_mounts(&self, id: &str) {
        let Some(c) = self.get(id) else { return };
        for m in c.mounts.iter().filter(|m| m.kind == "volume") {
            self.emit_volume(
                &m.name,
                "unmount",
                &[("container", id.to_string()), ("driver", "local".into())],
            );
            let Ok(Some(v)) = self.volume_record(&m.name) else {
                continue;
            };
            if v.options.is_empty() {
                continue;
            }
            let busy = lock(&self.containers).values().any(|o| {
                o.id != id
                    && o.state.status.is_active()
                    && o.mounts
                        .iter()
                        .any(|x| x.kind == "volume" && x.name == v.name)
            });
            let data = self.volume_data(&v.name);
            while !busy && is_mount_point(&data) {
                if nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH).is_err() {
                    break;
                }
            }
        }
    }

    /// `rm -v` and `--rm`: removes the container's anonymous volumes that nothing else uses.
    /// Called after the container's record is gone.
    pub(crate) fn remove_anonymous_volumes(&self, c: &Container) {
        for m in c
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && m.anonymous)
        {
            if let Ok(Some(v)) = self.volume_record(&m.name) {
                if let Err(e) = self.destroy_volume(&v) {
                    tracing::debug!(volume = %m.name, "keeping volume: {}", e.message);
                }
            }
        }
    }

    /// `Mounts` of inspect and list.
    pub(crate) fn mount_points(&self, c: &Container) -> Vec<ct::MountPoint> {
        c.mounts
            .iter()
            .map(|m| ct::MountPoint {
                kind: m.kind.clone(),
                name: m.name.clone(),
                source: m.source.clone(),
                destination: m.destination.clone(),
                driver: if m.kind == "volume" {
                    "local".into()
                } else {
                    String::new()
                },
                mode: m.mode.clone(),
                rw: m.rw,
                propagation: m.propagation.clone(),
            })
            .collect()
    }
}

/// A shared bind needs a shared source mount, a slave bind a shared or slave one (else it could
/// not receive anything), with dockerd's errors.
fn check_propagation_source(source: &str, propagation: &str) -> Result<()> {
    let need_shared = matches!(propagation, "rshared" | "shared");
    let need_receiving = matches!(propagation, "rslave" | "slave");
    if !need_shared && !need_receiving {
        return Ok(());
    }
    let Some(on) = crate::mountinfo::mount_of(Path::new(source)) else {
        return Ok(());
    };
    let what = if need_shared && !on.shared {
        "a shared"
    } else if need_receiving && !on.shared && !on.slave {
        "a shared or slave"
    } else {
        return Ok(());
    };
    Err(internal(format!(
        "path {source} is mounted on {} but it is not {what} mount",
        on.mount_point.display()
    )))
}

/// The options of a read-only bind, as dockerd decides them: `ro`, plus `rro` (recursively
/// read-only, through `mount_setattr`) unless the mount asked for the old non-recursive kind or
/// the kernel cannot; `ReadOnlyForceRecursive` on such a kernel is an error.
pub(crate) fn read_only_options(m: &MountRecord, kernel_can: bool) -> Result<Vec<String>> {
    let mut opts = vec!["ro".to_string()];
    if m.ro_non_recursive {
        return Ok(opts);
    }
    if kernel_can {
        opts.push("rro".into());
    } else if m.ro_force_recursive {
        return Err(ApiError::invalid(format!(
            "recursively read-only mount of {} is not supported: the kernel lacks mount_setattr (Linux 5.12 or newer)",
            m.destination
        )));
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_only_options_follow_the_kernel_and_the_mount() {
        use super::read_only_options;
        let m = |non, force| crate::model::MountRecord {
            destination: "/m".into(),
            ro_non_recursive: non,
            ro_force_recursive: force,
            ..Default::default()
        };
        assert_eq!(
            read_only_options(&m(false, false), true).unwrap(),
            ["ro", "rro"]
        );
        assert_eq!(read_only_options(&m(false, false), false).unwrap(), ["ro"]);
        assert_eq!(read_only_options(&m(true, false), true).unwrap(), ["ro"]);
        assert_eq!(
            read_only_options(&m(false, true), true).unwrap(),
            ["ro", "rro"]
        );
        let e = read_only_options(&m(false, true), false).unwrap_err();
        assert!(e.message.contains("not supported"), "{}", e.message);
    }

    use super::*;

    #[test]
    fn mount_options() {
        let (flags, data) = mount_flags("bind,ro,size=10m,uid=1");
        assert!(flags.contains(nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_RDONLY));
        assert_eq!(data, "size=10m,uid=1");
    }

    #[test]
    fn copy_tree_keeps_modes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"hello").unwrap();
        std::fs::set_permissions(src.join("sub/f"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&src, PermissionsExt::from_mode(0o711)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let dst = dir.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        copy_tree(&src, &dst).unwrap();
        assert_eq!(std::fs::read(dst.join("sub/f")).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(dst.join("sub/f")).unwrap().mode() & 0o7777,
            0o640
        );
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o711);
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
    }

    #[test]
    fn filters() {
        let v = VolumeRecord {
            name: "web-data".into(),
            driver: "local".into(),
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ..Default::default()
        };
        let f = |pairs: &[(&str, &str)], prune: bool| {
            let list: Vec<(String, Vec<String>)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                .collect();
            VolumeFilters::parse(&list, prune)
        };
        assert!(f(&[("name", "web")], false).unwrap().matches(&v, false));
        assert!(!f(&[("name", "db")], false).unwrap().matches(&v, false));
        assert!(f(&[("label", "app=web")], false).unwrap().matches(&v, true));
        assert!(!f(&[("dangling", "true")], false).unwrap().matches(&v, true));
        assert!(f(&[("dangling", "false")], false)
            .unwrap()
            .matches(&v, true));
        assert!(f(&[("driver", "local")], false).unwrap().matches(&v, true));
        assert!(f(&[("bogus", "x")], false).is_err());
        assert!(!f(&[("label!", "app")], true).unwrap().matches(&v, false));
        assert!(f(&[("all", "true")], true).unwrap().all);
    }
}
