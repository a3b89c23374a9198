//! `--security-opt`, seccomp and capabilities in the spec.

use oci_spec::runtime::{Capabilities, LinuxCapabilitiesBuilder};

use super::{
    build_err, caps, native_arch, seccomp, HostFacts, SeccompContext, SpecError,
    DEFAULT_PROFILE_JSON,
};

/// `SecurityOpt` parsed the way moby's `parseSecurityOpt` does.
#[derive(Debug, Default)]
pub(super) struct SecurityOpts {
    pub(super) no_new_privileges: bool,
    /// `None`: the default profile; `Some("unconfined")`; or a profile's JSON.
    pub(super) seccomp: Option<String>,
    pub(super) systempaths_unconfined: bool,
}

pub(super) fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // SELinux labelling: berth does not label
        }
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(SpecError::InvalidSecurityOpt(1, opt.clone()));
        };
        match key {
            "seccomp" => out.seccomp = Some(value.to_string()),
            "no-new-privileges" => {
                out.no_new_privileges = parse_go_bool(value)
                    .ok_or_else(|| SpecError::InvalidSecurityOpt(2, opt.clone()))?
            }
            "systempaths" if value == "unconfined" => out.systempaths_unconfined = true,
            "label" | "apparmor" => {
                tracing::debug!(opt, "security option ignored: berth applies no LSM profile");
            }
            _ => return Err(SpecError::InvalidSecurityOpt(2, opt.clone())),
        }
    }
    Ok(out)
}

/// Checks `SecurityOpt` at create, as moby's `setSecurityOptions` does.
pub fn validate_security_opts(opts: &[String]) -> Result<(), SpecError> {
    parse_security_opts(opts).map(|_| ())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The seccomp filter for a container with capability set `caps` (`None`: unconfined).
pub(super) fn seccomp_for(
    profile: Option<&str>,
    privileged: bool,
    caps: &[String],
    host: &HostFacts,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    if privileged {
        return Ok(None);
    }
    let json = match profile {
        Some("unconfined") => return Ok(None),
        None | Some("") | Some("builtin") => DEFAULT_PROFILE_JSON,
        Some(custom) => custom,
    };
    convert_seccomp_profile(json, caps, host)
}

/// Converts a Docker seccomp profile (JSON text) for a container holding `caps`, on this host.
pub fn convert_seccomp_profile(
    profile_json: &str,
    caps: &[String],
    host: &HostFacts,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    seccomp::convert_profile(
        profile_json,
        &SeccompContext {
            capabilities: caps,
            arch: native_arch(),
            kernel: host.kernel_version,
        },
    )
}

pub(super) fn capabilities_oci(
    caps: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let set = caps::to_oci(caps)?;
    // Docker ≥ 20.10 leaves inheritable and ambient empty (CVE-2022-24769).
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(build_err)
}
