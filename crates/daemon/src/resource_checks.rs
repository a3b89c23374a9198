//! dockerd's checks of a container's resource limits at create and update
//! (moby `verifyPlatformContainerResources` and `validateResources`), in dockerd's order and
//! with its messages: a limit the host's kernel cannot enforce (see [`SysInfo`]) is discarded
//! with dockerd's warning, which the create/update response carries and the docker CLI prints;
//! an impossible value is refused with a 400.

use berth_api_types::container::HostConfig;
use berth_api_types::ApiError;

use crate::sysinfo::SysInfo;
use crate::Result;

/// The smallest memory limit the kernel handles without killing the container at once.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Checks `hc` against Docker's rules and this host, discarding (with a warning) what the
/// host lacks. `update` relaxes the checks that only make sense for a whole new config.
pub(crate) fn verify(
    hc: &mut HostConfig,
    sys: &SysInfo,
    update: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let bad = |m: &str| Err(ApiError::invalid(m));
    if hc.memory_swappiness == Some(-1) {
        hc.memory_swappiness = None;
    }
    // dockerd refuses a tiny limit before it looks at whether the host can enforce one.
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB");
    }
    warnings.extend(discard_unsupported(hc, sys));

    // memory
    if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
        return bad("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    if hc.memory == 0 && hc.memory_swap > 0 && !update {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        );
    }
    if hc.memory_swap < -1 {
        return Err(ApiError::invalid(format!(
            "invalid memory swap limit: {}",
            hc.memory_swap
        )));
    }
    if let Some(s) = hc.memory_swappiness.filter(|s| !(0..=100).contains(s)) {
        return Err(ApiError::invalid(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    if hc.memory_reservation != 0 && hc.memory_reservation < MIN_MEMORY {
        return bad("Minimum memory reservation allowed is 6MB");
    }
    if hc.memory > 0 && hc.memory_reservation > 0 && hc.memory < hc.memory_reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        );
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p < -1) {
        return Err(ApiError::invalid(format!("invalid pids limit: {p}")));
    }

    // cpu
    let c = &sys.cgroup;
    if hc.nano_cpus > 0 && hc.cpu_period > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    }
    if hc.nano_cpus > 0 && hc.cpu_quota > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    }
    if hc.nano_cpus > 0 && !(c.cpu_cfs_period && c.cpu_cfs_quota) {
        return bad("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted");
    }
    let ncpu = sys.ncpu;
    if hc.nano_cpus < 0 || hc.nano_cpus > ncpu * 1_000_000_000 {
        return Err(ApiError::invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if hc.cpu_shares < 0 {
        return Err(ApiError::invalid(format!(
            "invalid CPU shares: {}",
            hc.cpu_shares
        )));
    }
    if hc.cpu_period != 0 && !(1000..=1_000_000).contains(&hc.cpu_period) {
        return bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        );
    }
    if hc.cpu_quota > 0 && hc.cpu_quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    if hc.cpu_realtime_period > 0 && !c.cpu_realtime {
        return bad("Your kernel does not support cgroup cpu real-time period");
    }
    if hc.cpu_realtime_runtime > 0 && !c.cpu_realtime {
        return bad("Your kernel does not support cgroup cpu real-time runtime");
    }
    if hc.cpu_realtime_period != 0
        && hc.cpu_realtime_runtime != 0
        && hc.cpu_realtime_runtime > hc.cpu_realtime_period
    {
        return bad("cpu real-time runtime cannot be higher than cpu real-time period");
    }
    for (what, list, available, noun) in [
        ("cpus", &hc.cpuset_cpus, &c.cpus, "CPUs"),
        ("mems", &hc.cpuset_mems, &c.mems, "memory nodes"),
    ] {
        if list.is_empty() {
            continue;
        }
        if crate::cpuset::parse_list(list).is_none() {
            return Err(ApiError::invalid(format!(
                "Invalid value {list} for cpuset {what}"
            )));
        }
        crate::cpuset::check(list, available, noun)?;
    }

    // block I/O
    if hc.blkio_weight > 0 && !(10..=1000).contains(&hc.blkio_weight) {
        return bad("Range of blkio weight is from 10 to 1000");
    }
    if hc.io_maximum_bandwidth != 0 || hc.io_maximum_iops != 0 {
        return bad(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
        );
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(ApiError::invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    Ok(())
}

/// Drops from `hc` every limit `sys` says the host cannot enforce and returns dockerd's
/// warnings for them, in dockerd's order (with its one advisory warning about an OOM killer
/// disabled without a memory limit among them, where dockerd gives it). Used by `verify` at
/// create/update and by the spec builder, which must never ask the runtime for a missing knob.
pub(crate) fn discard_unsupported(hc: &mut HostConfig, sys: &SysInfo) -> Vec<String> {
    let c = &sys.cgroup;
    let mut warnings = Vec::new();
    let mut warn = |m: &str| warnings.push(m.to_string());
    if hc.memory > 0 && !c.memory_limit {
        warn("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.");
        hc.memory = 0;
        hc.memory_swap = -1;
    }
    if hc.memory > 0 && hc.memory_swap != -1 && !c.swap_limit {
        warn("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.");
        hc.memory_swap = -1;
    }
    if hc.memory_swappiness.is_some_and(|s| s != -1) && !c.memory_swappiness {
        warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.");
        hc.memory_swappiness = None;
    }
    if hc.memory_reservation > 0 && !c.memory_reservation {
        warn("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.");
        hc.memory_reservation = 0;
    }
    if hc.oom_kill_disable.is_some() && !c.oom_kill_disable {
        // Asking for the default (the killer on) on a host without the knob is no loss.
        if hc.oom_kill_disable == Some(true) {
            warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.");
        }
        hc.oom_kill_disable = None;
    }
    if hc.oom_kill_disable == Some(true) && hc.memory == 0 {
        warn("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.");
    }
    if hc.pids_limit.is_some() && !c.pids_limit {
        if hc.pids_limit.is_some_and(|p| p > 0) {
            warn("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.");
        }
        hc.pids_limit = None;
    }
    if hc.cpu_shares > 0 && !c.cpu_shares {
        warn("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.");
        hc.cpu_shares = 0;
    }
    if (hc.cpu_period != 0 || hc.cpu_quota != 0) && !(c.cpu_cfs_period && c.cpu_cfs_quota) {
        warn("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.");
        hc.cpu_period = 0;
        hc.cpu_quota = 0;
    }
    if hc.cpu_percent > 0 {
        warn("linux does not support CPU percent. Percent discarded.");
        hc.cpu_percent = 0;
    }
    if (!hc.cpuset_cpus.is_empty() || !hc.cpuset_mems.is_empty()) && !c.cpuset {
        warn("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.");
        hc.cpuset_cpus.clear();
        hc.cpuset_mems.clear();
    }
    if hc.blkio_weight > 0 && !c.blkio_weight {
        warn("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
        hc.blkio_weight = 0;
    }
    if hc
        .blkio_weight_device
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        && !c.blkio_weight_device
    {
        warn("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.");
        hc.blkio_weight_device = Some(Vec::new());
    }
    let throttles = [
        (&mut hc.blkio_device_read_bps, c.blkio_read_bps, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."),
        (&mut hc.blkio_device_write_bps, c.blkio_write_bps, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."),
        (&mut hc.blkio_device_read_iops, c.blkio_read_iops, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."),
        (&mut hc.blkio_device_write_iops, c.blkio_write_iops, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."),
    ];
    for (list, have, text) in throttles {
        if list.as_ref().is_some_and(|l| !l.is_empty()) && !have {
            warn(text);
            *list = Some(Vec::new());
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use berth_api_types::container::{ThrottleDevice, WeightDevice};

    use super::*;
    use crate::sysinfo::CgroupVersion;

    fn hc() -> HostConfig {
        HostConfig::default()
    }

    fn full() -> SysInfo {
        let mut s = SysInfo::all_supported(CgroupVersion::V1);
        s.ncpu = 2;
        s.cgroup.cpus = "0-1".into();
        s
    }

    fn check(h: &HostConfig, sys: &SysInfo) -> (Result<HostConfig>, Vec<String>) {
        let mut h = h.clone();
        let mut w = Vec::new();
        let r = verify(&mut h, sys, false, &mut w).map(|()| h);
        (r, w)
    }

    fn err(h: &HostConfig) -> String {
        check(h, &full()).0.unwrap_err().message
    }

    #[test]
    fn docker_validation_messages() {
        let mut h = hc();
        h.memory = -5;
        assert_eq!(err(&h), "Minimum memory limit allowed is 6MB");
        h.memory = 4 * 1024 * 1024;
        assert_eq!(err(&h), "Minimum memory limit allowed is 6MB");
        h.memory = 32 * 1024 * 1024;
        h.memory_swap = 16 * 1024 * 1024;
        assert!(err(&h).starts_with("Minimum memoryswap limit"));
        h.memory_swap = 0;
        assert!(check(&h, &full()).0.is_ok());
        h.nano_cpus = 3_000_000_000;
        assert_eq!(
            err(&h),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        h.nano_cpus = 500_000_000;
        h.cpu_period = 50_000;
        assert!(err(&h).starts_with("Conflicting options"));
        let mut h = hc();
        h.cpuset_cpus = "0-x".into();
        assert_eq!(err(&h), "Invalid value 0-x for cpuset cpus");
        h.cpuset_cpus = "3".into();
        assert_eq!(
            err(&h),
            "Requested CPUs are not available - requested 3, available: 0-1"
        );
        let mut h = hc();
        h.blkio_weight = 5;
        assert_eq!(err(&h), "Range of blkio weight is from 10 to 1000");
        let mut h = hc();
        h.oom_score_adj = 1001;
        assert!(err(&h).contains("range for oom score adj"));
        let mut h = hc();
        h.memory_reservation = 1024;
        assert_eq!(err(&h), "Minimum memory reservation allowed is 6MB");
        let mut h = hc();
        h.cpu_realtime_period = 1000;
        h.cpu_realtime_runtime = 2000;
        assert_eq!(
            err(&h),
            "cpu real-time runtime cannot be higher than cpu real-time period"
        );
    }

    #[test]
    fn supported_knobs_are_kept_without_warnings() {
        let mut h = hc();
        h.blkio_weight = 300;
        h.memory = 64 << 20;
        h.memory_swappiness = Some(10);
        h.pids_limit = Some(50);
        h.blkio_device_read_bps = Some(vec![ThrottleDevice {
            path: "/dev/vda".into(),
            rate: 1 << 20,
        }]);
        let (r, w) = check(&h, &full());
        assert_eq!(r.unwrap(), h);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn the_blkio_weight_is_discarded_with_dockerds_warning_where_the_kernel_lacks_it() {
        let mut sys = full();
        sys.cgroup.blkio_weight = false;
        sys.cgroup.blkio_weight_device = false;
        let mut h = hc();
        // Out of range too: the discard comes first, as in dockerd.
        h.blkio_weight = 5;
        h.blkio_weight_device = Some(vec![WeightDevice {
            path: "/dev/vda".into(),
            weight: 200,
        }]);
        h.blkio_device_write_iops = Some(vec![ThrottleDevice {
            path: "/dev/vda".into(),
            rate: 100,
        }]);
        let (r, w) = check(&h, &sys);
        let out = r.unwrap();
        assert_eq!(out.blkio_weight, 0);
        assert_eq!(out.blkio_weight_device, Some(Vec::new()));
        assert_eq!(out.blkio_device_write_iops, h.blkio_device_write_iops);
        assert_eq!(
            w,
            vec![
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
                "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
            ]
        );
    }

    #[test]
    fn every_missing_knob_is_discarded_or_refused_as_dockerd_does() {
        let mut sys = full();
        sys.cgroup = Default::default();
        let mut h = hc();
        h.memory = 64 << 20;
        h.memory_reservation = 32 << 20;
        h.memory_swappiness = Some(50);
        h.oom_kill_disable = Some(true);
        h.pids_limit = Some(10);
        h.cpu_shares = 512;
        h.cpu_quota = 50_000;
        h.cpuset_mems = "0".into();
        h.blkio_device_read_bps = Some(vec![ThrottleDevice {
            path: "/dev/vda".into(),
            rate: 1,
        }]);
        let (r, w) = check(&h, &sys);
        let out = r.unwrap();
        assert_eq!(
            (out.memory, out.memory_swap, out.memory_reservation),
            (0, -1, 0)
        );
        assert_eq!(
            (out.memory_swappiness, out.oom_kill_disable, out.pids_limit),
            (None, None, None)
        );
        assert_eq!((out.cpu_shares, out.cpu_quota), (0, 0));
        assert!(out.cpuset_mems.is_empty());
        assert_eq!(out.blkio_device_read_bps, Some(Vec::new()));
        assert_eq!(w.len(), 9, "{w:?}");
        assert!(w[0].starts_with("Your kernel does not support memory limit"));
        assert!(
            w.iter()
                .any(|m| m
                    == "Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        );
        // --cpus cannot be honoured without CFS: refused, not discarded.
        let mut h = hc();
        h.nano_cpus = 1_000_000_000;
        assert!(check(&h, &sys)
            .0
            .unwrap_err()
            .message
            .starts_with("NanoCPUs can not be set"));
        let mut h = hc();
        h.cpu_realtime_period = 1000;
        assert_eq!(
            check(&h, &sys).0.unwrap_err().message,
            "Your kernel does not support cgroup cpu real-time period"
        );
    }

    #[test]
    fn update_allows_a_swap_limit_alone() {
        let mut h = hc();
        h.memory_swap = 64 << 20;
        assert!(check(&h, &full()).0.is_err());
        let mut w = Vec::new();
        assert!(verify(&mut h, &full(), true, &mut w).is_ok());
    }
}
