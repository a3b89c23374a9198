//! Linux capabilities: Docker's default set and the `--cap-add`/`--cap-drop`/`--privileged` rules
//! (moby `oci/caps`), expressed as `CAP_*` names.

use std::collections::HashSet;

use oci_spec::runtime::{Capabilities, Capability};

use super::SpecError;

/// Every capability the kernel defines, indexed by its number (`CAP_CHOWN` = 0 ... `CAP_CHECKPOINT_RESTORE` = 40).
/// `CapBnd` in `/proc/self/status` is a bit mask over these numbers.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby `oci/caps.DefaultCapabilities`), in Docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Capability names set in a `CapBnd`-style hex mask (bits beyond the known table are ignored).
pub fn caps_from_mask(mask: u64) -> Vec<String> {
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// The `CapEff`-style mask of a list of capability names (unknown names are ignored).
pub fn caps_to_mask<S: AsRef<str>>(caps: &[S]) -> u64 {
    caps.iter()
        .filter_map(|c| ALL_CAPABILITIES.iter().position(|k| *k == c.as_ref()))
        .fold(0, |mask, bit| mask | (1u64 << bit))
}

/// Normalizes a user-supplied capability name the way Docker does: case-insensitive, `CAP_`
/// prefix optional, `ALL` kept as is.
pub(crate) fn normalize(cap: &str) -> Result<String, SpecError> {
    let upper = cap.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(SpecError::UnknownCapability(name))
    }
}

/// Checks `CapAdd`/`CapDrop` names at create (moby `NormalizeLegacyCapabilities`): `ALL` or a
/// capability the kernel defines, any case, `CAP_` optional. The error names the first unknown
/// one, normalized (`unknown capability: "CAP_FOO"`).
pub fn validate_capability_names(caps: &[String]) -> Result<(), SpecError> {
    normalize_all(caps).map(|_| ())
}

fn normalize_all(caps: &[String]) -> Result<Vec<String>, SpecError> {
    caps.iter().map(|c| normalize(c)).collect()
}

/// The container's capability set (moby `caps.TweakCapabilities`).
///
/// `host_bounding` is the daemon's own bounding set: a container can never hold a capability the
/// daemon lacks (the runtime would fail to raise it), so privileged and `ALL` mean "everything the
/// daemon has", defaults the daemon lacks are left out, and an explicit `--cap-add` of one is an
/// error. An empty `host_bounding` means "unknown" and disables this filtering.
pub fn container_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    host_bounding: &[String],
) -> Result<Vec<String>, SpecError> {
    let everything: Vec<String> = if host_bounding.is_empty() {
        ALL_CAPABILITIES.iter().map(|c| (*c).to_string()).collect()
    } else {
        ALL_CAPABILITIES
            .iter()
            .filter(|c| host_bounding.iter().any(|h| h == *c))
            .map(|c| (*c).to_string())
            .collect()
    };
    if privileged {
        return Ok(everything);
    }
    let adds = normalize_all(cap_add)?;
    let drops = normalize_all(cap_drop)?;
    let available = |c: &str| host_bounding.is_empty() || host_bounding.iter().any(|h| h == c);

    let mut caps: Vec<String> = if adds.iter().any(|c| c == "ALL") {
        everything
            .into_iter()
            .filter(|c| !drops.contains(c))
            .collect()
    } else if drops.iter().any(|c| c == "ALL") {
        adds
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !drops.iter().any(|d| d == *c) && available(c))
            .map(|c| (*c).to_string())
            .chain(adds)
            .collect()
    };
    let mut seen = HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    if let Some(missing) = caps.iter().find(|c| !available(c)) {
        return Err(SpecError::CapabilityUnavailable(missing.clone()));
    }
    Ok(caps)
}

/// Converts `CAP_*` names into oci-spec's capability set.
pub fn to_oci(caps: &[String]) -> Result<Capabilities, SpecError> {
    caps.iter()
        .map(|c| {
            serde_json::from_value::<Capability>(serde_json::Value::String(c.clone()))
                .map_err(|_| SpecError::UnknownCapability(c.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    fn host_without_sys_resource() -> Vec<String> {
        ALL_CAPABILITIES
            .iter()
            .filter(|c| **c != "CAP_SYS_RESOURCE")
            .map(|c| (*c).to_string())
            .collect()
    }

    #[test]
    fn defaults_are_dockers_mask() {
        let caps = container_capabilities(&[], &[], false, &[]).unwrap();
        assert_eq!(caps.len(), 14);
        assert_eq!(format!("{:016x}", caps_to_mask(&caps)), "00000000a80425fb");
        assert_eq!(caps_from_mask(0xa80425fb).len(), 14);
        assert_eq!(to_oci(&caps).unwrap().len(), 14);
    }

    #[test]
    fn add_and_drop_accept_any_case_and_prefix() {
        let caps = container_capabilities(
            &s(&["sys_admin", "CAP_NET_ADMIN", "Cap_Sys_Ptrace"]),
            &s(&["mknod", "CAP_NET_RAW"]),
            false,
            &[],
        )
        .unwrap();
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(caps.len(), 14 - 2 + 3);
    }

    #[test]
    fn adding_a_default_does_not_duplicate() {
        let caps = container_capabilities(&s(&["chown"]), &[], false, &[]).unwrap();
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn all_rules() {
        let host = host_without_sys_resource();
        let caps = container_capabilities(&s(&["ALL"]), &s(&["sys_admin"]), false, &host).unwrap();
        assert_eq!(caps.len(), 39);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        let caps = container_capabilities(&s(&["kill"]), &s(&["all"]), false, &host).unwrap();
        assert_eq!(caps, s(&["CAP_KILL"]));
    }

    #[test]
    fn unknown_capability_is_dockers_error() {
        let err = container_capabilities(&s(&["foo"]), &[], false, &[]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
        let err = container_capabilities(&[], &s(&["CAP_BAR"]), false, &[]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_BAR\"");
    }

    #[test]
    fn privileged_takes_the_daemons_bounding_set() {
        let host = host_without_sys_resource();
        let caps = container_capabilities(&[], &[], true, &host).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
        let err = container_capabilities(&s(&["SYS_RESOURCE"]), &[], false, &host).unwrap_err();
        assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
    }
}
