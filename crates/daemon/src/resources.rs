//! Resource limits: Docker's validation of `HostConfig` resources at create time, and
//! `POST /containers/{id}/update`, which changes the limits of a container (stored for the next
//! start, and written straight into the cgroup files of a running one).
//!
//! The daemon writes the cgroup files itself rather than asking the shim: the container's
//! cgroups are found from `/proc/<init pid>/cgroup`, which works the same on v1, hybrid and v2
//! hosts, and the shim holds no state about limits that could go stale.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api_types::container::{HostConfig, UpdateConfig};
use berth_api_types::{ApiError, ErrorKind};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxBlockIoBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder,
};

use crate::errors::{into_api_error, Classified};
use crate::host::CgroupFiles;
use crate::model::Status;
use crate::{Daemon, Result};

/// The per-device rules of an update (`UpdateConfig` is Docker's update body: zero means
/// "leave as is").
fn device_rules(u: &UpdateConfig) -> crate::blkio::DeviceRules {
    crate::blkio::DeviceRules {
        blkio_weight_device: u.blkio_weight_device.clone(),
        blkio_device_read_bps: u.blkio_device_read_bps.clone(),
        blkio_device_write_bps: u.blkio_device_write_bps.clone(),
        blkio_device_read_iops: u.blkio_device_read_iops.clone(),
        blkio_device_write_iops: u.blkio_device_write_iops.clone(),
    }
}

/// Ignores an update's per-device rules (clients older than API 1.55 could not send them).
fn drop_devices(u: &mut UpdateConfig) {
    u.blkio_weight_device = None;
    u.blkio_device_read_bps = None;
    u.blkio_device_write_bps = None;
    u.blkio_device_read_iops = None;
    u.blkio_device_write_iops = None;
}

/// Merges an update into a stored `HostConfig` as moby's `UpdateResources` does.
pub(crate) fn merge_update(hc: &mut HostConfig, u: &UpdateConfig) -> Result<()> {
    if u.memory != 0 {
        if hc.memory_swap > 0 && u.memory > hc.memory_swap && u.memory_swap == 0 {
            return Err(ApiError::conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"));
        }
        hc.memory = u.memory;
    }
    if u.memory_swap != 0 {
        hc.memory_swap = u.memory_swap;
    }
    if u.memory_reservation != 0 {
        hc.memory_reservation = u.memory_reservation;
    }
    if u.nano_cpus != 0 {
        if hc.cpu_quota > 0 || hc.cpu_period > 0 {
            return Err(ApiError::conflict("Conflicting options: CPU Quota or CPU Period cannot be updated as NanoCPUs has already been set"));
        }
        hc.nano_cpus = u.nano_cpus;
    }
    if u.cpu_quota != 0 || u.cpu_period != 0 {
        if hc.nano_cpus > 0 && u.nano_cpus == 0 {
            return Err(ApiError::conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set"));
        }
        if u.cpu_quota != 0 {
            hc.cpu_quota = u.cpu_quota;
        }
        if u.cpu_period != 0 {
            hc.cpu_period = u.cpu_period;
        }
    }
    if u.cpu_shares != 0 {
        hc.cpu_shares = u.cpu_shares;
    }
    if !u.cpuset_cpus.is_empty() {
        hc.cpuset_cpus = u.cpuset_cpus.clone();
    }
    if !u.cpuset_mems.is_empty() {
        hc.cpuset_mems = u.cpuset_mems.clone();
    }
    if let Some(p) = u.pids_limit {
        // Docker: 0 or -1 in an update means unlimited.
        hc.pids_limit = Some(if p <= 0 { -1 } else { p });
    }
    if u.blkio_weight != 0 {
        hc.blkio_weight = u.blkio_weight;
    }
    let rp = &u.restart_policy;
    if !rp.name.is_empty() {
        crate::restart::validate_policy(rp)?;
        if hc.auto_remove && !matches!(rp.name.as_str(), "no") {
            return Err(ApiError::invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        hc.restart_policy = rp.clone();
    }
    Ok(())
}

/// Where a process's cgroups are: one directory per v1 controller, or the v2 directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CgroupPaths {
    /// v1 controller name → directory.
    pub v1: Vec<(String, PathBuf)>,
    /// The unified directory when the host is cgroup v2 only.
    pub v2: Option<PathBuf>,
}

impl CgroupPaths {
    pub fn for_pid(pid: i64) -> Option<CgroupPaths> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let root = Path::new("/sys/fs/cgroup");
        Some(Self::parse(
            &text,
            root,
            root.join("cgroup.controllers").exists(),
        ))
    }

    pub fn parse(text: &str, root: &Path, unified_only: bool) -> CgroupPaths {
        let mut out = CgroupPaths::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if ctrls.is_empty() {
                if unified_only {
                    out.v2 = Some(root.join(rel));
                }
                continue;
            }
            if unified_only {
                continue;
            }
            let dir = root.join(ctrls).join(rel);
            for c in ctrls.split(',') {
                let c = c.trim_start_matches("name=");
                out.v1.push((c.to_string(), dir.clone()));
            }
        }
        out
    }

    /// The v1 directory of a controller.
    pub fn v1(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p.as_path())
    }
}

/// One write of a value into a cgroup file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CgroupWrite {
    pub file: PathBuf,
    pub value: String,
}

pub(crate) fn w(dir: &Path, file: &str, value: impl ToString) -> CgroupWrite {
    CgroupWrite {
        file: dir.join(file),
        value: value.to_string(),
    }
}

/// cgroup v2 `cpu.weight` from v1 shares (runc's `ConvertCPUSharesToCgroupV2Value`).
pub(crate) fn shares_to_weight(shares: i64) -> i64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares - 2) * 9999) / 262_142
}

/// The cgroup writes that put `hc`'s updatable limits in force, in an order the kernel accepts.
pub(crate) fn plan_writes(hc: &HostConfig, paths: &CgroupPaths) -> Vec<CgroupWrite> {
    let mut out = Vec::new();
    let (quota, period) = if hc.nano_cpus > 0 {
        (hc.nano_cpus * 100_000 / 1_000_000_000, 100_000)
    } else {
        (hc.cpu_quota, hc.cpu_period)
    };
    if let Some(dir) = &paths.v2 {
        if hc.memory > 0 {
            out.push(w(dir, "memory.max", hc.memory));
            if hc.memory_swap > 0 {
                out.push(w(dir, "memory.swap.max", hc.memory_swap - hc.memory));
            } else if hc.memory_swap == -1 {
                out.push(w(dir, "memory.swap.max", "max"));
            }
        }
        if hc.memory_reservation > 0 {
            out.push(w(dir, "memory.low", hc.memory_reservation));
        }
        if hc.cpu_shares > 0 {
            out.push(w(dir, "cpu.weight", shares_to_weight(hc.cpu_shares)));
        }
        if quota != 0 || period != 0 {
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            let p = if period > 0 { period } else { 100_000 };
            out.push(w(dir, "cpu.max", format!("{q} {p}")));
        }
        if !hc.cpuset_cpus.is_empty() {
            out.push(w(dir, "cpuset.cpus", &hc.cpuset_cpus));
        }
        if !hc.cpuset_mems.is_empty() {
            out.push(w(dir, "cpuset.mems", &hc.cpuset_mems));
        }
        if let Some(p) = hc.pids_limit {
            out.push(w(dir, "pids.max", pids_value(p)));
        }
        if hc.blkio_weight > 0 {
            out.push(blkio_weight_write(dir, hc.blkio_weight, true));
        }
        return out;
    }
    if let Some(dir) = paths.v1("memory") {
        if hc.memory > 0 {
            // The caller retries this pair in the other order when the kernel refuses a
            // limit above the current memory+swap limit.
            out.push(w(dir, "memory.limit_in_bytes", hc.memory));
            if hc.memory_swap != 0 && dir.join("memory.memsw.limit_in_bytes").exists() {
                out.push(w(dir, "memory.memsw.limit_in_bytes", hc.memory_swap));
            }
        }
        if hc.memory_reservation > 0 {
            out.push(w(dir, "memory.soft_limit_in_bytes", hc.memory_reservation));
        }
    }
    if let Some(dir) = paths.v1("cpu") {
        if hc.cpu_shares > 0 {
            out.push(w(dir, "cpu.shares", hc.cpu_shares));
        }
        if period > 0 {
            out.push(w(dir, "cpu.cfs_period_us", period));
        }
        if quota != 0 {
            out.push(w(dir, "cpu.cfs_quota_us", quota));
        }
    }
    if let Some(dir) = paths.v1("cpuset") {
        if !hc.cpuset_cpus.is_empty() {
            out.push(w(dir, "cpuset.cpus", &hc.cpuset_cpus));
        }
        if !hc.cpuset_mems.is_empty() {
            out.push(w(dir, "cpuset.mems", &hc.cpuset_mems));
        }
    }
    if let (Some(dir), Some(p)) = (paths.v1("pids"), hc.pids_limit) {
        out.push(w(dir, "pids.max", pids_value(p)));
    }
    if let Some(dir) = paths.v1("blkio") {
        if hc.blkio_weight > 0 {
            out.push(blkio_weight_write(dir, hc.blkio_weight, false));
        }
    }
    out
}

/// The file a blkio weight (10..1000) goes to, as the runtime chooses it: BFQ's own file
/// where the group has one (same scale on v1; 1..10000 on v2 for `io.weight`, blk-iocost),
/// else the CFQ-era `blkio.weight` (v1) or `io.weight` (v2).
fn blkio_weight_write(dir: &Path, weight: u16, v2: bool) -> CgroupWrite {
    match (
        v2,
        dir.join(if v2 { "io.bfq.weight" } else { "blkio.weight" })
            .exists(),
    ) {
        (true, true) => w(dir, "io.bfq.weight", weight),
        (true, false) => w(
            dir,
            "io.weight",
            1 + u32::from(weight.saturating_sub(10)) * 9999 / 990,
        ),
        (false, true) => w(dir, "blkio.weight", weight),
        (false, false) => w(dir, "blkio.bfq.weight", weight),
    }
}

fn pids_value(p: i64) -> String {
    if p > 0 {
        p.to_string()
    } else {
        "max".into()
    }
}

/// A host device a container asks for (`--device`, the blkio options) that cannot be used, or a
/// cgroup file an update could not write.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("error gathering device information while adding custom device {path:?}: {cause}")]
    Gather { path: String, cause: GatherCause },
    #[error("invalid device mode: {0}")]
    Mode(String),
    #[error(
        "invalid blkio weight device: weight {weight} for {path} is out of the range from 10 to 1000"
    )]
    WeightRange { weight: u16, path: String },
    /// oci-spec refused the device or rule built from the request.
    #[error("{0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("writing {value} to {}: {source}", file.display())]
    Write {
        value: String,
        file: PathBuf,
        source: std::io::Error,
    },
}

/// Why a device path is not a usable device node (runc's wording).
#[derive(Debug, thiserror::Error)]
pub enum GatherCause {
    #[error("no such file or directory")]
    Missing,
    #[error("{0}")]
    Io(std::io::Error),
    #[error("not a device node")]
    NotDevice,
}

impl Classified for DeviceError {
    /// Everything about the request's devices is the client's to fix; a cgroup write that fails
    /// is the daemon's.
    fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::Write { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidParameter,
        }
    }
}

into_api_error!(DeviceError);

fn apply_writes(
    files: &dyn CgroupFiles,
    writes: &[CgroupWrite],
) -> std::result::Result<(), DeviceError> {
    let mut pending: Vec<&CgroupWrite> = writes.iter().collect();
    // memory.limit_in_bytes must stay ≤ memsw: a raise of both fails in the planned order and
    // succeeds in the other, so failed writes are retried once after the rest.
    let mut failed = Vec::new();
    for wr in pending.drain(..) {
        if files.write(&wr.file, &wr.value).is_err() {
            failed.push(wr);
        }
    }
    for wr in failed {
        files
            .write(&wr.file, &wr.value)
            .map_err(|source| DeviceError::Write {
                value: wr.value.clone(),
                file: wr.file.clone(),
                source,
            })?;
    }
    Ok(())
}

impl Daemon {
    /// What the runtime leaves out on cgroup v1, written here right after the start:
    /// libcontainer 0.7 never passes `disableOOMKiller` to its v1 memory controller, and its
    /// v1 blkio controller ignores per-device weights.
    pub(crate) fn post_start_limits(&self, id: &str) {
        let Some(c) = self.get(id) else { return };
        let hc = &c.host_config;
        let weights = hc.blkio_weight_device.as_deref().unwrap_or_default();
        if hc.oom_kill_disable != Some(true) && weights.is_empty() {
            return;
        }
        let Some(paths) = self.cgroups.paths_of(c.state.pid) else {
            return;
        };
        let mut writes = Vec::new();
        if let (Some(dir), Some(true)) = (paths.v1("memory"), hc.oom_kill_disable) {
            writes.push(w(dir, "memory.oom_control", 1));
        }
        if let Some(dir) = paths.v1("blkio") {
            let file = if dir.join("blkio.bfq.weight_device").exists() {
                "blkio.bfq.weight_device"
            } else {
                "blkio.weight_device"
            };
            for wd in weights {
                match device_node(&wd.path) {
                    Ok((_, major, minor, ..)) => {
                        writes.push(w(dir, file, format!("{major}:{minor} {}", wd.weight)));
                    }
                    Err(e) => tracing::warn!(container = id, "--blkio-weight-device: {e}"),
                }
            }
        }
        for wr in writes {
            if let Err(e) = self.cgroups.write(&wr.file, &wr.value) {
                tracing::warn!(
                    container = id,
                    "writing {} to {}: {e}",
                    wr.value,
                    wr.file.display()
                );
            }
        }
    }

    /// `POST /containers/{id}/update`.
    pub async fn container_update(
        self: &Arc<Self>,
        key: &str,
        body: serde_json::Value,
        opts: berth_services::UpdateOptions,
    ) -> Result<Vec<String>> {
        // Decoded by Go's rules, as dockerd decodes `UpdateConfig`.
        let mut req: UpdateConfig = berth_api_types::gojson::from_value(body)
            .map_err(|e| ApiError::invalid(format!("invalid update request: {e}")))?;
        // Fields the client's API version does not have are not read (as dockerd).
        if !opts.pids_limit {
            req.pids_limit = None;
        }
        if !opts.blkio_devices {
            drop_devices(&mut req);
        }
        let c = self.resolve_container(key)?;
        let guard = self.op_lock(&c.id);
        let _g = guard.lock().await;
        let mut c = self
            .get(&c.id)
            .ok_or_else(|| crate::model::no_such_container(key))?;
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            return Err(ApiError::conflict(format!(
                "Cannot update container {}: container is marked for removal and cannot be \"update\"",
                c.id
            )));
        }
        let mut hc = c.host_config.clone();
        merge_update(&mut hc, &req)?;
        let devices = device_rules(&req);
        devices.merge_into(&mut hc);
        crate::blkio::validate(&hc, &device_number)?;
        let mut warnings = Vec::new();
        if let Some(r) = &self.cfg.rootless {
            crate::rootless::check_limits(&hc, r)?;
        }
        crate::resource_checks::verify(&mut hc, &self.host.sys, true, &mut warnings)?;
        if c.state.status.is_active() && c.state.pid > 0 {
            let paths = self.cgroups.paths_of(c.state.pid).ok_or_else(|| {
                ApiError::internal(format!(
                    "Cannot update container {}: its cgroups are gone",
                    c.id
                ))
            })?;
            let mut writes = plan_writes(&hc, &paths);
            if !devices.is_empty() {
                writes.extend(crate::blkio::plan(
                    &c.host_config,
                    &hc,
                    &paths,
                    &device_number,
                )?);
            }
            let files = self.cgroups.clone();
            tokio::task::spawn_blocking(move || apply_writes(&*files, &writes))
                .await
                .map_err(crate::internal)?
                .map_err(|e| {
                    ApiError::internal(format!("Cannot update container {}: {e}", c.id))
                })?;
        }
        c.host_config = hc;
        self.save(&c)?;
        self.emit_container_id(&c.id, "update", &[]);
        Ok(warnings)
    }
}

/// A host device's (major, minor).
fn device_number(path: &str) -> std::result::Result<(i64, i64), DeviceError> {
    device_node(path).map(|(_, major, minor, ..)| (major, minor))
}

/// A host device node: (type, major, minor, mode, uid, gid).
fn device_node(
    path: &str,
) -> std::result::Result<(LinuxDeviceType, i64, i64, u32, u32, u32), DeviceError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let gather = |cause| DeviceError::Gather {
        path: path.to_string(),
        cause,
    };
    let md = std::fs::metadata(path).map_err(|e| {
        gather(match e.kind() {
            std::io::ErrorKind::NotFound => GatherCause::Missing,
            _ => GatherCause::Io(e),
        })
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(gather(GatherCause::NotDevice));
    };
    let rdev = md.rdev();
    Ok((
        typ,
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
        md.mode() & 0o777,
        md.uid(),
        md.gid(),
    ))
}

/// `--device /dev/x[:/dev/y[:rwm]]`: the device nodes to create and the cgroup rules allowing
/// them (moby `DevicesFromPath` for single nodes).
pub(crate) fn device_mappings(
    hc: &HostConfig,
) -> std::result::Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), DeviceError> {
    let (mut devs, mut rules) = (Vec::new(), Vec::new());
    for d in hc.devices.iter().flatten() {
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        if perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(DeviceError::Mode(perms.to_string()));
        }
        let (typ, major, minor, mode, uid, gid) = device_node(&d.path_on_host)?;
        let target = if d.path_in_container.is_empty() {
            d.path_on_host.clone()
        } else {
            d.path_in_container.clone()
        };
        devs.push(
            LinuxDeviceBuilder::default()
                .path(target)
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(mode)
                .uid(uid)
                .gid(gid)
                .build()?,
        );
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(major)
                .minor(minor)
                .access(perms.to_string())
                .build()?,
        );
    }
    Ok((devs, rules))
}

/// `--blkio-weight`, `--blkio-weight-device` and the `--device-{read,write}-{bps,iops}`
/// throttles, with device paths turned into major:minor.
pub(crate) fn block_io(hc: &HostConfig) -> std::result::Result<Option<LinuxBlockIo>, DeviceError> {
    let throttle = |list: &Option<Vec<berth_api_types::container::ThrottleDevice>>| {
        list.iter()
            .flatten()
            .map(|t| {
                let (_, major, minor, ..) = device_node(&t.path)?;
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(t.rate)
                    .build()
                    .map_err(DeviceError::from)
            })
            .collect::<std::result::Result<Vec<_>, DeviceError>>()
    };
    let mut weights = Vec::new();
    for wd in hc.blkio_weight_device.iter().flatten() {
        let (_, major, minor, ..) = device_node(&wd.path)?;
        weights.push(
            LinuxWeightDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .weight(wd.weight)
                .build()?,
        );
    }
    let (rb, wb) = (
        throttle(&hc.blkio_device_read_bps)?,
        throttle(&hc.blkio_device_write_bps)?,
    );
    let (ri, wi) = (
        throttle(&hc.blkio_device_read_iops)?,
        throttle(&hc.blkio_device_write_iops)?,
    );
    if hc.blkio_weight == 0
        && weights.is_empty()
        && rb.is_empty()
        && wb.is_empty()
        && ri.is_empty()
        && wi.is_empty()
    {
        return Ok(None);
    }
    let mut b = LinuxBlockIoBuilder::default();
    if hc.blkio_weight > 0 {
        b = b.weight(hc.blkio_weight);
    }
    if !weights.is_empty() {
        b = b.weight_device(weights);
    }
    if !rb.is_empty() {
        b = b.throttle_read_bps_device(rb);
    }
    if !wb.is_empty() {
        b = b.throttle_write_bps_device(wb);
    }
    if !ri.is_empty() {
        b = b.throttle_read_iops_device(ri);
    }
    if !wi.is_empty() {
        b = b.throttle_write_iops_device(wi);
    }
    Ok(b.build().map(Some)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc() -> HostConfig {
        HostConfig::default()
    }

    /// Issue 18's property test for the update body (the type lives here, the fixtures with
    /// the other recorded bodies): every variant Go would not notice decodes alike.
    #[test]
    fn recorded_update_bodies_under_go_rules() {
        use berth_api_types::gojson;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../api-types/tests/fixtures/container-update");
        let mut checked = 0;
        for e in std::fs::read_dir(&dir).expect("update fixtures") {
            let path = e.expect("entry").path();
            let raw = std::fs::read(&path).expect("fixture");
            let original: serde_json::Value = serde_json::from_slice(&raw).expect("JSON");
            let base: UpdateConfig = gojson::from_slice(&raw).expect("original decodes");
            assert!(base != UpdateConfig::default(), "{}", path.display());
            let structs = gojson::struct_pointers::<UpdateConfig>(&raw).expect("trace");
            for v in gojson::variants::variants(&original, &structs) {
                let body = serde_json::to_vec(&v.body).expect("JSON");
                let got: UpdateConfig = gojson::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", path.display(), v.what));
                let want: UpdateConfig = gojson::from_value(v.expect).expect("expected body");
                assert_eq!(got, want, "{}: {}", path.display(), v.what);
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} variants");
    }

    #[test]
    fn update_numbers_follow_go() {
        use berth_api_types::gojson;
        let e = gojson::from_slice::<UpdateConfig>(br#"{"Memory":1e9}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "json: cannot unmarshal number 1e9 into Go struct field UpdateConfig.Memory of type int64"
        );
        let u: UpdateConfig =
            gojson::from_slice(br#"{"memory":1024,"BlkioWeightDevice":null,"pidslimit":null}"#)
                .expect("decodes");
        assert_eq!((u.memory, u.pids_limit), (1024, None));
    }

    #[test]
    fn update_merges_like_docker() {
        let mut h = hc();
        h.memory = 32 << 20;
        h.memory_swap = 64 << 20;
        let u = UpdateConfig {
            memory: 128 << 20,
            ..Default::default()
        };
        assert!(merge_update(&mut h.clone(), &u).is_err(), "above memsw");
        let u = UpdateConfig {
            memory: 128 << 20,
            memory_swap: 256 << 20,
            pids_limit: Some(0),
            ..Default::default()
        };
        merge_update(&mut h, &u).unwrap();
        assert_eq!((h.memory, h.memory_swap), (128 << 20, 256 << 20));
        assert_eq!(h.pids_limit, Some(-1));
        let mut h = hc();
        h.cpu_quota = 50_000;
        let u = UpdateConfig {
            nano_cpus: 1_000_000_000,
            ..Default::default()
        };
        assert!(merge_update(&mut h, &u).is_err());
    }

    #[test]
    fn cgroup_paths_and_writes() {
        let text = "9:name=systemd:/\n4:memory:/p/c1\n2:cpu,cpuacct:/p/c1\n8:pids:/p/c1\n0::/\n";
        let p = CgroupPaths::parse(text, Path::new("/cg"), false);
        assert_eq!(p.v1("memory"), Some(Path::new("/cg/memory/p/c1")));
        assert_eq!(p.v1("cpuacct"), Some(Path::new("/cg/cpu,cpuacct/p/c1")));
        assert_eq!(p.v2, None);
        let mut h = hc();
        h.nano_cpus = 500_000_000;
        h.pids_limit = Some(10);
        let ws = plan_writes(&h, &p);
        assert!(ws.contains(&w(
            Path::new("/cg/cpu,cpuacct/p/c1"),
            "cpu.cfs_quota_us",
            50000
        )));
        assert!(ws.contains(&w(Path::new("/cg/pids/p/c1"), "pids.max", 10)));

        let p = CgroupPaths::parse("0::/p/c1\n", Path::new("/cg"), true);
        assert_eq!(p.v2.as_deref(), Some(Path::new("/cg/p/c1")));
        h.memory = 64 << 20;
        h.memory_swap = 128 << 20;
        h.cpu_shares = 1024;
        let ws = plan_writes(&h, &p);
        let dir = Path::new("/cg/p/c1");
        assert!(ws.contains(&w(dir, "cpu.max", "50000 100000")));
        assert!(ws.contains(&w(dir, "memory.max", 64 << 20)));
        assert!(ws.contains(&w(dir, "memory.swap.max", 64 << 20)));
        assert!(ws.contains(&w(dir, "cpu.weight", 39)));
        assert!(ws.contains(&w(dir, "pids.max", 10)));
    }
}
