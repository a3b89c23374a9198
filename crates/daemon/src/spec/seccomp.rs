//! Docker seccomp profiles (the JSON format of moby `profiles/seccomp`) converted into the OCI
//! `LinuxSeccomp` a runtime loads: the architecture list comes from `archMap` for the native
//! architecture, and each syscall group is kept or dropped by its `includes`/`excludes` filters
//! evaluated against the container's final capability set, the native architecture and the
//! running kernel.

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompOperator,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::SpecError;
use crate::sysinfo::parse_kernel_version;

/// Docker's default profile, byte for byte (`profiles/seccomp/default.json`).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("seccomp-default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// What the include/exclude filters are evaluated against.
#[derive(Debug, Clone)]
pub struct SeccompContext<'a> {
    /// The container's bounding capability set (`CAP_*` names).
    pub capabilities: &'a [String],
    /// The native architecture in moby's naming (`amd64`, `arm64`, ...), see [`native_arch`].
    pub arch: &'a str,
    /// The running kernel's (major, minor, patch).
    pub kernel: (u32, u32, u32),
}

/// The native architecture in the naming moby's profiles use for `includes.arches`.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips" if cfg!(target_endian = "little") => "mipsel",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// moby's `nativeToSeccomp`: the libseccomp name of a profile architecture.
fn seccomp_arch(native: &str) -> Option<&'static str> {
    Some(match native {
        "x86" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mips3l64n32" => "SCMP_ARCH_MIPSEL64N32",
        "mipsle" | "mipsel" => "SCMP_ARCH_MIPSEL",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

fn kernel_at_least(ctx: &SeccompContext, min: &str) -> Result<bool, SpecError> {
    let want = parse_kernel_version(min)
        .ok_or_else(|| SpecError::Seccomp(format!("invalid minKernel version {min:?}")))?;
    Ok(ctx.kernel >= want)
}

fn has(list: &Option<Vec<String>>) -> &[String] {
    list.as_deref().unwrap_or(&[])
}

/// Converts a Docker-format seccomp profile (JSON text) into the OCI form for this container.
/// Returns `None` when the profile disables seccomp (no default action and no syscalls), as moby does.
pub fn convert_profile(
    profile_json: &str,
    ctx: &SeccompContext,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    let profile: Profile = serde_json::from_str(profile_json)
        .map_err(|e| SpecError::Seccomp(format!("decoding seccomp profile failed: {e}")))?;
    if profile.default_action.is_empty() && profile.syscalls.as_ref().is_none_or(|s| s.is_empty()) {
        return Ok(None);
    }
    if !has(&profile.architectures).is_empty()
        && profile.arch_map.as_ref().is_some_and(|m| !m.is_empty())
    {
        return Err(SpecError::Seccomp(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }

    let mut architectures: Vec<String> = has(&profile.architectures).to_vec();
    if let (Some(map), Some(native)) = (&profile.arch_map, seccomp_arch(ctx.arch)) {
        if let Some(entry) = map.iter().find(|a| a.architecture == native) {
            architectures.push(entry.architecture.clone());
            architectures.extend(has(&entry.sub_architectures).iter().cloned());
        }
    }

    let mut syscalls = Vec::new();
    'calls: for call in profile.syscalls.iter().flatten() {
        let excludes = call.excludes.as_ref();
        let includes = call.includes.as_ref();
        if let Some(ex) = excludes {
            if has(&ex.arches).iter().any(|a| a == ctx.arch) {
                continue;
            }
            if has(&ex.caps).iter().any(|c| ctx.capabilities.contains(c)) {
                continue;
            }
            if let Some(min) = ex.min_kernel.as_deref().filter(|m| !m.is_empty()) {
                if kernel_at_least(ctx, min)? {
                    continue;
                }
            }
        }
        if let Some(inc) = includes {
            let arches = has(&inc.arches);
            if !arches.is_empty() && !arches.iter().any(|a| a == ctx.arch) {
                continue;
            }
            for cap in has(&inc.caps) {
                if !ctx.capabilities.contains(cap) {
                    continue 'calls;
                }
            }
            if let Some(min) = inc.min_kernel.as_deref().filter(|m| !m.is_empty()) {
                if !kernel_at_least(ctx, min)? {
                    continue;
                }
            }
        }
        let names: Vec<String> = match (&call.name, &call.names) {
            (n, Some(ns)) if !n.is_empty() && !ns.is_empty() => {
                return Err(SpecError::Seccomp(
                    "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
                ))
            }
            (n, _) if !n.is_empty() => vec![n.clone()],
            (_, ns) => has(ns).to_vec(),
        };
        let mut out = json!({ "names": names, "action": call.action });
        if let Some(errno) = call.errno_ret {
            out["errnoRet"] = json!(errno);
        }
        if let Some(args) = call.args.as_ref().filter(|a| !a.is_empty()) {
            out["args"] = Value::Array(args.clone());
        }
        syscalls.push(out);
    }

    let mut out = json!({ "defaultAction": profile.default_action, "syscalls": syscalls });
    if let Some(errno) = profile.default_errno_ret {
        out["defaultErrnoRet"] = json!(errno);
    }
    if !architectures.is_empty() {
        out["architectures"] = json!(architectures);
    }
    if let Some(flags) = profile.flags.filter(|f| !f.is_empty()) {
        out["flags"] = json!(flags);
    }
    if let Some(path) = profile.listener_path.filter(|p| !p.is_empty()) {
        out["listenerPath"] = json!(path);
    }
    if let Some(meta) = profile.listener_metadata.filter(|m| !m.is_empty()) {
        out["listenerMetadata"] = json!(meta);
    }
    let seccomp: LinuxSeccomp = serde_json::from_value(out)
        .map_err(|e| SpecError::Seccomp(format!("invalid seccomp profile: {e}")))?;
    check_runtime_support(&seccomp)?;
    Ok(Some(seccomp))
}

/// Swaps `value` and `valueTwo` of every `SCMP_CMP_MASKED_EQ` argument.
///
/// runc, crun and Docker read a masked comparison as `(arg & value) == valueTwo`; libcontainer
/// 0.7 (`seccomp::initialize_seccomp`) hands `valueTwo` to libseccomp as the mask and `value` as
/// the datum, i.e. `(arg & valueTwo) == value`. Docker's `clone` rule (`value` = namespace flag
/// mask, `valueTwo` = 0) would then never match and every `fork` would fail with EPERM. The
/// swap is its own inverse: it turns a runc-style filter into a libcontainer-style one and back.
pub fn swap_masked_eq_operands(seccomp: &mut LinuxSeccomp) {
    let Some(mut calls) = seccomp.syscalls().clone() else {
        return;
    };
    for call in &mut calls {
        let Some(mut args) = call.args().clone() else {
            continue;
        };
        for arg in &mut args {
            if arg.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                let swapped = LinuxSeccompArgBuilder::default()
                    .index(arg.index())
                    .op(arg.op())
                    .value(arg.value_two().unwrap_or(0))
                    .value_two(arg.value())
                    .build();
                match swapped {
                    Ok(a) => *arg = a,
                    Err(e) => tracing::error!(%e, "cannot rebuild a seccomp argument"),
                }
            }
        }
        call.set_args(Some(args));
    }
    seccomp.set_syscalls(Some(calls));
}

/// The checks libcontainer 0.7 (`seccomp::check_seccomp`) makes before loading a filter, done
/// here so the error reaches the API client instead of failing inside the container's init.
fn check_runtime_support(seccomp: &LinuxSeccomp) -> Result<(), SpecError> {
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SpecError::Seccomp(
            "SCMP_ACT_NOTIFY cannot be used as default action".into(),
        ));
    }
    for call in seccomp.syscalls().iter().flatten() {
        if call.action() == LinuxSeccompAction::ScmpActNotify {
            if call.names().iter().any(|n| n == "write") {
                return Err(SpecError::Seccomp(
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall".into(),
                ));
            }
            return Err(SpecError::Seccomp(
                "SCMP_ACT_NOTIFY is not supported: berth has no seccomp agent".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::Arch;

    use super::super::caps::DEFAULT_CAPABILITIES;
    use super::*;

    fn default_caps() -> Vec<String> {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_string())
            .collect()
    }

    fn ctx(caps: &[String]) -> SeccompContext<'_> {
        SeccompContext {
            capabilities: caps,
            arch: "amd64",
            kernel: (6, 1, 0),
        }
    }

    fn allowed(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls()
            .iter()
            .flatten()
            .filter(|c| c.action() == LinuxSeccompAction::ScmpActAllow)
            .flat_map(|c| c.names().clone())
            .collect()
    }

    #[test]
    fn default_profile_on_amd64() {
        let caps = default_caps();
        let s = convert_profile(DEFAULT_PROFILE_JSON, &ctx(&caps))
            .unwrap()
            .unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(
            s.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let names = allowed(&s);
        // 346 unconditional + ptrace (kernel >= 4.8) + 5 personality variants + arch_prctl
        // + modify_ldt + chroot (CAP_SYS_CHROOT is a default) + the non-SYS_ADMIN clone rule.
        assert!(names.contains(&"ptrace".to_string()));
        assert!(names.contains(&"arch_prctl".to_string()));
        assert!(names.contains(&"chroot".to_string()));
        assert!(!names.contains(&"mount".to_string()));
        assert!(!names.contains(&"sync_file_range2".to_string()));
        assert!(!names.contains(&"reboot".to_string()));
        assert_eq!(names.len(), 346 + 1 + 5 + 1 + 1 + 1 + 1);
        // the non-SYS_ADMIN clone is restricted by a masked comparison on the flags argument
        let clone = s
            .syscalls()
            .iter()
            .flatten()
            .find(|c| c.names() == &vec!["clone".to_string()])
            .unwrap();
        let arg = &clone.args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(arg.index(), 0);
        assert_eq!(arg.value(), 2114060288);
        // clone3 answers ENOSYS so libcs fall back to clone
        let clone3 = s
            .syscalls()
            .iter()
            .flatten()
            .find(|c| c.names() == &vec!["clone3".to_string()])
            .unwrap();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(38));
    }

    #[test]
    fn masked_eq_swap_is_an_involution() {
        let caps = default_caps();
        let mut s = convert_profile(DEFAULT_PROFILE_JSON, &ctx(&caps))
            .unwrap()
            .unwrap();
        let orig = s.clone();
        swap_masked_eq_operands(&mut s);
        let clone = s
            .syscalls()
            .iter()
            .flatten()
            .find(|c| c.names() == &vec!["clone".to_string()])
            .unwrap();
        let arg = &clone.args().as_ref().unwrap()[0];
        assert_eq!((arg.value(), arg.value_two()), (0, Some(2114060288)));
        // EQ comparisons (personality) are untouched
        let personality = s
            .syscalls()
            .iter()
            .flatten()
            .find(|c| c.names() == &vec!["personality".to_string()])
            .unwrap();
        assert_eq!(personality.args().as_ref().unwrap()[0].value(), 0);
        swap_masked_eq_operands(&mut s);
        let operands = |s: &LinuxSeccomp| -> Vec<(u64, u64)> {
            s.syscalls()
                .iter()
                .flatten()
                .flat_map(|c| c.args().clone().unwrap_or_default())
                .map(|a| (a.value(), a.value_two().unwrap_or(0)))
                .collect()
        };
        assert_eq!(operands(&s), operands(&orig));
    }

    #[test]
    fn old_kernel_loses_ptrace() {
        let caps = default_caps();
        let mut c = ctx(&caps);
        c.kernel = (4, 4, 0);
        let s = convert_profile(DEFAULT_PROFILE_JSON, &c).unwrap().unwrap();
        assert!(!allowed(&s).contains(&"ptrace".to_string()));
    }

    #[test]
    fn sys_admin_enables_mount_and_unrestricted_clone() {
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let s = convert_profile(DEFAULT_PROFILE_JSON, &ctx(&caps))
            .unwrap()
            .unwrap();
        let names = allowed(&s);
        for n in ["mount", "umount2", "unshare", "setns", "clone3", "bpf"] {
            assert!(names.contains(&n.to_string()), "{n} missing");
        }
        // no conditional clone rule and no ENOSYS clone3 rule remain
        assert!(s
            .syscalls()
            .iter()
            .flatten()
            .all(|c| c.args().is_none() || !c.names().contains(&"clone".to_string())));
        assert!(s
            .syscalls()
            .iter()
            .flatten()
            .all(|c| c.action() == LinuxSeccompAction::ScmpActAllow
                || !c.names().contains(&"clone3".to_string())));
    }

    #[test]
    fn custom_profile() {
        let caps = default_caps();
        let profile = r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"name": "chmod", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": null},
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        }"#;
        let s = convert_profile(profile, &ctx(&caps)).unwrap().unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            s.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64]
        );
        let calls = s.syscalls().clone().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].names(), &vec!["chmod".to_string()]);
        assert_eq!(calls[0].errno_ret(), Some(13));
        assert_eq!(calls[1].action(), LinuxSeccompAction::ScmpActKill);
    }

    #[test]
    fn empty_profile_disables_seccomp() {
        let caps = default_caps();
        assert!(convert_profile("{}", &ctx(&caps)).unwrap().is_none());
    }

    #[test]
    fn invalid_profiles_are_rejected() {
        let caps = default_caps();
        for bad in [
            "not json",
            r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_WHAT"}]}]}"#,
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ] {
            let err = convert_profile(bad, &ctx(&caps)).unwrap_err();
            assert!(matches!(err, SpecError::Seccomp(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("5.15.0-101-generic"), Some((5, 15, 0)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8, 0)));
        assert_eq!(parse_kernel_version("6.8.12+rpt"), Some((6, 8, 12)));
        assert_eq!(parse_kernel_version("x"), None);
    }
}
