//! Default devices and the device cgroup rules (`--device-cgroup-rule`).

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::{build_err, SpecError};

pub(super) fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(build_err)
}

/// Device cgroup rules every container gets: deny everything, then allow mknod of any device
/// and use of the standard devices, the ptys and tun (runc's `AllowedDevices`, which Docker
/// relies on). Privileged containers get a single allow-all rule instead.
pub(super) fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    use LinuxDeviceType::{B, C};
    let rwm = "rwm";
    Ok(vec![
        device_rule(false, None, None, None, rwm)?,
        device_rule(true, Some(C), None, None, "m")?,
        device_rule(true, Some(B), None, None, "m")?,
        device_rule(true, Some(C), Some(1), Some(3), rwm)?,
        device_rule(true, Some(C), Some(1), Some(8), rwm)?,
        device_rule(true, Some(C), Some(1), Some(7), rwm)?,
        device_rule(true, Some(C), Some(5), Some(0), rwm)?,
        device_rule(true, Some(C), Some(1), Some(5), rwm)?,
        device_rule(true, Some(C), Some(1), Some(9), rwm)?,
        device_rule(true, Some(C), Some(5), Some(1), rwm)?,
        device_rule(true, Some(C), Some(136), None, rwm)?,
        device_rule(true, Some(C), Some(5), Some(2), rwm)?,
        device_rule(true, Some(C), Some(10), Some(200), rwm)?,
    ])
}

/// The devices OCI requires every container to have, created by the runtime.
pub(super) fn default_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(path, major, minor)| {
        LinuxDeviceBuilder::default()
            .path(*path)
            .typ(LinuxDeviceType::C)
            .major(*major)
            .minor(*minor)
            .file_mode(0o666u32)
            .uid(0u32)
            .gid(0u32)
            .build()
            .map_err(build_err)
    })
    .collect()
}

/// `--device-cgroup-rule` entries: `c 1:3 rwm`, `b *:* m`, `a *:* rwm`.
pub(super) fn parse_device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::InvalidParameter(format!("invalid device cgroup rule: {rule:?}"));
    let parts: Vec<&str> = rule.split_whitespace().collect();
    let [typ, nums, access] = parts.as_slice() else {
        return Err(bad());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Option<i64>, SpecError> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| bad())
        }
    };
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    device_rule(true, Some(typ), num(major)?, num(minor)?, access)
}
