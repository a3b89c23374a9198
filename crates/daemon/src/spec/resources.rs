//! Resource limits (memory, CPU, pids, block I/O) and the container's cgroup path.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

use super::{build_err, SpecError, SpecInput};

pub(super) fn resources(
    input: &SpecInput,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    // Create and update already discarded what the host lacks (`resource_checks`); a
    // container made on another host (or before a kernel change) may still ask for it, and
    // the runtime fails on a cgroup file that does not exist: such knobs are left out here.
    let mut hc = input.host_config.clone();
    crate::resource_checks::discard_unsupported(&mut hc, &input.host.sys);
    let hc = &hc;
    let mut mem = LinuxMemoryBuilder::default();
    if hc.memory > 0 {
        mem = mem.limit(hc.memory);
    }
    if hc.memory_reservation > 0 {
        mem = mem.reservation(hc.memory_reservation);
    }
    let swap = if hc.memory_swap == 0 && hc.memory > 0 {
        hc.memory * 2
    } else {
        hc.memory_swap
    };
    if swap != 0 {
        if swap > 0 && hc.memory > 0 && swap < hc.memory {
            return Err(SpecError::InvalidParameter(
                "minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        mem = mem.swap(swap);
    }
    if let Some(sw) = hc.memory_swappiness.filter(|s| *s != -1) {
        if !(0..=100).contains(&sw) {
            return Err(SpecError::InvalidParameter(format!(
                "invalid value: {sw}, valid memory swappiness range is 0-100"
            )));
        }
        mem = mem.swappiness(sw.unsigned_abs());
    }
    if hc.oom_kill_disable == Some(true) {
        mem = mem.disable_oom_killer(true);
    }
    let mut cpu = LinuxCpuBuilder::default();
    if hc.nano_cpus > 0 {
        if hc.cpu_period > 0 || hc.cpu_quota > 0 {
            return Err(SpecError::InvalidParameter(
                "conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        let period: u64 = 100_000;
        cpu = cpu
            .period(period)
            // A ten-thousandth of `nano_cpus`: always within i64.
            .quota(
                i64::try_from(i128::from(hc.nano_cpus) * i128::from(period) / 1_000_000_000)
                    .unwrap_or(i64::MAX),
            );
    }
    if hc.cpu_shares > 0 {
        cpu = cpu.shares(hc.cpu_shares.unsigned_abs());
    }
    if hc.cpu_period > 0 {
        cpu = cpu.period(hc.cpu_period.unsigned_abs());
    }
    if hc.cpu_quota != 0 {
        cpu = cpu.quota(hc.cpu_quota);
    }
    if hc.cpu_realtime_period > 0 {
        cpu = cpu.realtime_period(hc.cpu_realtime_period.unsigned_abs());
    }
    if hc.cpu_realtime_runtime != 0 {
        cpu = cpu.realtime_runtime(hc.cpu_realtime_runtime);
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(hc.cpuset_cpus.clone());
    }
    if !hc.cpuset_mems.is_empty() {
        cpu = cpu.mems(hc.cpuset_mems.clone());
    }

    let mut res = LinuxResourcesBuilder::default()
        .devices(device_rules)
        .memory(mem.build().map_err(build_err)?)
        .cpu(cpu.build().map_err(build_err)?);
    if let Some(limit) = hc.pids_limit.filter(|l| *l > 0) {
        res = res.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(build_err)?,
        );
    }
    if let Some(bio) = crate::resources::block_io(hc)? {
        res = res.block_io(bio);
    }
    res.build().map_err(build_err)
}

pub(super) fn cgroups_path(input: &SpecInput) -> PathBuf {
    container_cgroup_path(
        &input.host_config.cgroup_parent,
        input.cgroup_parent,
        input.id,
    )
}

/// The container's cgroup, relative to each hierarchy's root: `/<parent>/<id>`, the parent
/// being `--cgroup-parent` (`own_parent`) or else the daemon's.
pub fn container_cgroup_path(own_parent: &str, daemon_parent: &str, id: &str) -> PathBuf {
    let parent = if own_parent.is_empty() {
        daemon_parent
    } else {
        own_parent
    };
    let mut p = PathBuf::from("/");
    p.push(parent.trim_start_matches('/'));
    p.push(id);
    p
}
