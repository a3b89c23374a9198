//! Precompiled seccomp filters.
//!
//! libcontainer compiles a container's seccomp profile with libseccomp inside the container's
//! init, on every start and exec (tens of milliseconds for Docker's default profile). Instead
//! the shim compiles each distinct profile once, caches the BPF program under
//! `<exec-root>/seccomp/<sha256>.bpf`, hands libcontainer a copy of the spec without
//! `linux.seccomp`, and loads the program itself from the workload executor
//! ([`crate::executor`]) once libcontainer has set the process up.
//!
//! Without `noNewPrivileges` loading a filter needs `CAP_SYS_ADMIN` in the effective set, which
//! libcontainer has already reduced to the spec's by then: when the spec lacks it, the shim adds
//! it to the effective and permitted sets given to libcontainer (never to the bounding,
//! inheritable or ambient sets) and the executor takes it away again with one `capset` right
//! after loading the filter. That `capset` runs under the filter, so this fast path is taken
//! only for profiles that certainly allow `capset`; notify actions, unknown flags or any error
//! fall back to libcontainer's own handling.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, Process, Spec,
};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use sha2::{Digest, Sha256};

/// `seccomp(2)` filter flags.
const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;

/// Bumped whenever the translation below changes, so stale cache files are never reused.
const FORMAT: &str = "berth-seccomp-bpf-v1";

/// A compiled filter, ready to be loaded with `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The raw program: `sock_filter` records in host byte order, as `seccomp_export_bpf` writes.
    pub program: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` as libseccomp would pass them for the profile's `flags`.
    pub flags: u32,
}

/// Capabilities the executor removes again after loading the filter (bit masks, as `capset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapDrop {
    pub effective: u64,
    pub permitted: u64,
}

/// Why a profile is left to libcontainer.
#[derive(Debug, PartialEq, Eq)]
pub enum Ineligible {
    Notify,
    Flag(LinuxSeccompFilterFlag),
    CapsetNotAllowed,
    PartialCapabilities,
}

impl std::error::Error for Ineligible {}

/// Why the shim could not compile, cache or hand over a seccomp filter (the init then falls
/// back to libcontainer's own handling; an exec fails).
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("encode profile: {0}")]
    EncodeProfile(serde_json::Error),
    #[error(transparent)]
    Ineligible(#[from] Ineligible),
    /// For an exec: the process cannot be given the filter.
    #[error("seccomp: {0}")]
    ExecIneligible(Ineligible),
    #[error("create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("export seccomp filter: {0}")]
    Export(libseccomp::error::SeccompError),
    #[error("rename {}: {source}", path.display())]
    Rename { path: PathBuf, source: io::Error },
    #[error("invalid {}", .0.display())]
    InvalidProgram(PathBuf),
    #[error("seccomp: {what}: {source}")]
    Compile {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp: trace errno {0} out of range")]
    TraceErrno(i32),
    #[error("decode process: {0}")]
    DecodeProcess(serde_json::Error),
    #[error("encode process: {0}")]
    EncodeProcess(serde_json::Error),
    #[error("load {}: {source}", path.display())]
    LoadSpec {
        path: PathBuf,
        source: libcontainer::oci_spec::OciSpecError,
    },
    #[error("no linux section")]
    NoLinux,
    #[error("no process")]
    NoProcess,
    #[error("rootfs of {}: {source}", bundle.display())]
    Rootfs {
        bundle: PathBuf,
        source: libcontainer::oci_spec::OciSpecError,
    },
    #[error("encode spec: {0}")]
    EncodeSpec(serde_json::Error),
    #[error("write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::Notify => write!(f, "profile uses SCMP_ACT_NOTIFY or a listener"),
            Ineligible::Flag(fl) => write!(f, "unsupported filter flag {fl:?}"),
            Ineligible::CapsetNotAllowed => {
                write!(f, "profile does not unconditionally allow capset")
            }
            Ineligible::PartialCapabilities => {
                write!(f, "process has no effective or permitted capability set")
            }
        }
    }
}

/// The cache key of a profile: sha256 over the format version, the native architecture, the
/// libseccomp version and the serialized profile.
pub fn cache_key(seccomp: &LinuxSeccomp) -> Result<String, SeccompError> {
    let profile = serde_json::to_vec(seccomp).map_err(SeccompError::EncodeProfile)?;
    let lib = ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut h = Sha256::new();
    for part in [
        FORMAT.as_bytes(),
        std::env::consts::ARCH.as_bytes(),
        lib.as_bytes(),
    ] {
        h.update(part);
        h.update([0u8]);
    }
    h.update(&profile);
    Ok(hex::encode(h.finalize()))
}

/// The kernel flags for the profile's `flags`, or why they cannot be passed by us.
pub fn kernel_flags(seccomp: &LinuxSeccomp) -> Result<u32, Ineligible> {
    let mut out = 0;
    for flag in seccomp.flags().iter().flatten() {
        out |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // Only meaningful with a notify listener.
            other => return Err(Ineligible::Flag(*other)),
        };
    }
    Ok(out)
}

fn is_notify(seccomp: &LinuxSeccomp) -> bool {
    seccomp.default_action() == LinuxSeccompAction::ScmpActNotify
        || seccomp
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
        || seccomp.listener_path().is_some()
}

/// Whether every call of `name` is allowed whatever its arguments, judged as libseccomp will
/// see the rules after [`build`] skipped those equal to the default action.
pub fn allows_unconditionally(seccomp: &LinuxSeccomp, name: &str) -> bool {
    let Ok(default) = translate_action(seccomp.default_action(), seccomp.default_errno_ret())
    else {
        return false;
    };
    let mut rules = Vec::new();
    for call in seccomp.syscalls().iter().flatten() {
        if !call.names().iter().any(|n| n == name) {
            continue;
        }
        match translate_action(call.action(), call.errno_ret()) {
            Ok(a) if a == default => {}
            Ok(a) => rules.push((a, call.args().as_ref().is_some_and(|a| !a.is_empty()))),
            Err(_) => return false,
        }
    }
    if default == ScmpAction::Allow {
        return rules.is_empty();
    }
    !rules.is_empty()
        && rules.iter().all(|(a, _)| *a == ScmpAction::Allow)
        && rules.iter().any(|(_, conditional)| !conditional)
}

/// Whether the filter can be loaded by us for a process started with `process`, and which
/// capabilities must be added for the load (and dropped right after it). Adds them to
/// `process` when needed. With `require_capset`, refuses profiles that may refuse the
/// `capset` that drops them.
pub fn prepare_process(
    seccomp: &LinuxSeccomp,
    process: &mut Process,
    require_capset: bool,
) -> Result<CapDrop, Ineligible> {
    if is_notify(seccomp) {
        return Err(Ineligible::Notify);
    }
    kernel_flags(seccomp)?;
    if process.no_new_privileges() == Some(true) {
        return Ok(CapDrop::default());
    }
    let Some(mut caps) = process.capabilities().clone() else {
        // libcontainer keeps the full root set: CAP_SYS_ADMIN is there.
        return Ok(CapDrop::default());
    };
    let (Some(mut eff), Some(mut perm)) = (caps.effective().clone(), caps.permitted().clone())
    else {
        return Err(Ineligible::PartialCapabilities);
    };
    let mut drop = CapDrop::default();
    let bit = 1u64 << libc_cap_sys_admin();
    if eff.insert(Capability::SysAdmin) {
        drop.effective |= bit;
    }
    if perm.insert(Capability::SysAdmin) {
        drop.permitted |= bit;
    }
    if drop == CapDrop::default() {
        return Ok(drop);
    }
    if require_capset && !allows_unconditionally(seccomp, "capset") {
        return Err(Ineligible::CapsetNotAllowed);
    }
    caps.set_effective(Some(eff)).set_permitted(Some(perm));
    process.set_capabilities(Some(caps));
    Ok(drop)
}

/// `CAP_SYS_ADMIN`'s number.
const fn libc_cap_sys_admin() -> u32 {
    21
}

/// Loads the filter for `seccomp` from the cache in `dir`, compiling and storing it first
/// when it is not there.
pub fn cached_filter(dir: &Path, seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let flags = kernel_flags(seccomp)?;
    let key = cache_key(seccomp)?;
    let path = dir.join(format!("{key}.bpf"));
    if let Some(program) = read_program(&path) {
        return Ok(Filter { program, flags });
    }
    let ctx = build(seccomp)?;
    fs::create_dir_all(dir).map_err(|source| SeccompError::Create {
        path: dir.to_owned(),
        source,
    })?;
    let tmp = dir.join(format!("{key}.bpf.{}.tmp", std::process::id()));
    let res = (|| {
        let f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|source| SeccompError::Create {
                path: tmp.clone(),
                source,
            })?;
        ctx.export_bpf(&f).map_err(SeccompError::Export)?;
        drop(f);
        // Concurrent shims write identical bytes; whichever rename lands last wins.
        fs::rename(&tmp, &path).map_err(|source| SeccompError::Rename {
            path: path.clone(),
            source,
        })
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res?;
    let program = read_program(&path).ok_or_else(|| SeccompError::InvalidProgram(path.clone()))?;
    Ok(Filter { program, flags })
}

fn read_program(path: &Path) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path).ok()?.read_to_end(&mut buf).ok()?;
    let rec = std::mem::size_of::<libc::sock_filter>();
    (!buf.is_empty() && buf.len() % rec == 0 && buf.len() / rec <= u16::MAX as usize).then_some(buf)
}

/// Compiles the profile exactly as libcontainer's `seccomp::initialize_seccomp` does, without
/// loading it.
pub fn build(seccomp: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    let err = |what: &str, source| SeccompError::Compile {
        what: what.to_string(),
        source,
    };
    let default = translate_action(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("new filter", e))?;
    for flag in seccomp.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
        }
        .map_err(|e| err("set filter flag", e))?;
    }
    for &arch in seccomp.architectures().iter().flatten() {
        ctx.add_arch(translate_arch(arch))
            .map_err(|e| err("add arch", e))?;
    }
    ctx.set_ctl_nnp(false).map_err(|e| err("set ctl nnp", e))?;
    for call in seccomp.syscalls().iter().flatten() {
        let action = translate_action(call.action(), call.errno_ret())?;
        if action == default {
            continue;
        }
        for name in call.names() {
            // Unknown to this libseccomp (or kernel): skipped, as libcontainer does.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            match call.args() {
                Some(args) => {
                    let cmps: Vec<ScmpArgCompare> = args
                        .iter()
                        .map(|a| {
                            ScmpArgCompare::new(
                                // An argument index: 0-5.
                                u32::try_from(a.index()).unwrap_or(u32::MAX),
                                translate_op(a.op(), a.value_two()),
                                a.value(),
                            )
                        })
                        .collect();
                    let mut seen = HashSet::new();
                    let duplicate = args.iter().any(|a| !seen.insert(a.index()));
                    if duplicate {
                        // libseccomp compares each argument once per rule: one rule per
                        // comparison, as runc and libcontainer do.
                        for c in &cmps {
                            ctx.add_rule_conditional(action, sc, std::slice::from_ref(c))
                                .map_err(|e| err(&format!("add rule for {name}"), e))?;
                        }
                    } else {
                        ctx.add_rule_conditional(action, sc, &cmps)
                            .map_err(|e| err(&format!("add rule for {name}"), e))?;
                    }
                }
                None => {
                    ctx.add_rule(action, sc)
                        .map_err(|e| err(&format!("add rule for {name}"), e))?;
                }
            }
        }
    }
    Ok(ctx)
}

fn translate_action(
    action: LinuxSeccompAction,
    errno: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            errno
                .try_into()
                .map_err(|_| SeccompError::TraceErrno(errno))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
    })
}

fn translate_op(op: LinuxSeccompOperator, datum_b: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(datum_b.unwrap_or(0)),
    }
}

fn translate_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// A container's seccomp profile, kept by the monitor for exec processes. libcontainer 0.7
/// builds an exec's spec from the bundle's but keeps only a few `linux` fields: without this
/// an exec process would run with no filter at all (runc and Docker give it the container's).
pub struct ExecSeccomp {
    profile: LinuxSeccomp,
    cache_dir: PathBuf,
    filter: std::cell::OnceCell<Filter>,
}

impl ExecSeccomp {
    fn new(profile: LinuxSeccomp, cache_dir: &Path, filter: Option<Filter>) -> Self {
        let cell = std::cell::OnceCell::new();
        if let Some(f) = filter {
            let _ = cell.set(f);
        }
        ExecSeccomp {
            profile,
            cache_dir: cache_dir.to_owned(),
            filter: cell,
        }
    }

    /// Adapts an exec's `process` (JSON, as the daemon sends it) and returns it with the filter
    /// and the capabilities to drop after loading it. There is no libcontainer path to fall
    /// back to here: when `capset` may be refused the drop is attempted anyway, and a refusal
    /// fails the exec (it never runs with the helper capability or unfiltered).
    pub fn prepare_exec(
        &self,
        process: &serde_json::Value,
    ) -> Result<(Vec<u8>, Filter, CapDrop), SeccompError> {
        let mut p: Process =
            serde_json::from_value(process.clone()).map_err(SeccompError::DecodeProcess)?;
        let drop =
            prepare_process(&self.profile, &mut p, false).map_err(SeccompError::ExecIneligible)?;
        let filter = match self.filter.get() {
            Some(f) => f.clone(),
            None => {
                let f = cached_filter(&self.cache_dir, &self.profile)?;
                let _ = self.filter.set(f.clone());
                f
            }
        };
        let data = serde_json::to_vec(&p).map_err(SeccompError::EncodeProcess)?;
        Ok((data, filter, drop))
    }
}

/// `<exec-root>/seccomp`: the daemon puts libcontainer's state in `<exec-root>/runtime`.
pub fn cache_dir(runtime_root: &Path) -> Option<PathBuf> {
    runtime_root.parent().map(|p| p.join("seccomp"))
}

/// What the shim hands libcontainer for a container's init.
pub struct Prepared {
    /// The bundle to create from: the original, or a copy of its spec without `linux.seccomp`.
    pub bundle: PathBuf,
    /// The filter to load from the executor, with the capabilities to drop after it.
    pub init: Option<(Filter, CapDrop)>,
    /// The container's profile, for exec processes (none for notify profiles, left as they were).
    pub exec: Option<ExecSeccomp>,
    /// Why libcontainer handles the init's seccomp itself, when there is a profile and it does.
    pub fallback: Option<SeccompError>,
    /// The spec of `bundle` as read here (its mounts as written), so that the shim's mount
    /// fix-up does not parse it again; `None` when it could not be read.
    pub spec: Option<Spec>,
}

impl Prepared {
    pub fn unchanged(bundle: &Path) -> Prepared {
        Prepared {
            bundle: bundle.to_owned(),
            init: None,
            exec: None,
            fallback: None,
            spec: None,
        }
    }
}

/// Decides between the fast path and libcontainer's own seccomp handling for a container.
/// On the fast path writes `<work_dir>/config.json` (the spec without `linux.seccomp`, with
/// the capabilities needed for the load, rootfs made absolute) and returns that directory as
/// the bundle. Every failure falls back (the reason is kept in [`Prepared::fallback`]).
pub fn prepare(bundle: &Path, work_dir: &Path, cache_dir: &Path) -> Prepared {
    let mut out = Prepared::unchanged(bundle);
    let src = bundle.join("config.json");
    let spec = match Spec::load(&src) {
        Ok(s) => s,
        Err(e) => {
            out.fallback = Some(SeccompError::LoadSpec {
                path: src,
                source: e,
            });
            return out;
        }
    };
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        out.spec = Some(spec);
        return out;
    };
    if !is_notify(&seccomp) {
        out.exec = Some(ExecSeccomp::new(seccomp.clone(), cache_dir, None));
    }
    match fast_path(spec, seccomp, bundle, work_dir, cache_dir) {
        Ok((filter, spec)) => {
            out.spec = Some(spec);
            out.bundle = work_dir.to_owned();
            out.init = Some(filter.clone());
            if let Some(ex) = &out.exec {
                let _ = ex.filter.set(filter.0);
            }
        }
        Err(e) => out.fallback = Some(e),
    }
    out
}

fn fast_path(
    mut spec: Spec,
    seccomp: LinuxSeccomp,
    bundle: &Path,
    work_dir: &Path,
    cache_dir: &Path,
) -> Result<((Filter, CapDrop), Spec), SeccompError> {
    let mut linux = spec.linux().clone().ok_or(SeccompError::NoLinux)?;
    let mut process = spec.process().clone().ok_or(SeccompError::NoProcess)?;
    let drop = prepare_process(&seccomp, &mut process, true)?;
    let filter = cached_filter(cache_dir, &seccomp)?;
    linux.set_seccomp(None);
    spec.set_linux(Some(linux)).set_process(Some(process));
    spec.canonicalize_rootfs(bundle)
        .map_err(|source| SeccompError::Rootfs {
            bundle: bundle.to_owned(),
            source,
        })?;
    fs::create_dir_all(work_dir).map_err(|source| SeccompError::Create {
        path: work_dir.to_owned(),
        source,
    })?;
    let data = serde_json::to_vec(&spec).map_err(SeccompError::EncodeSpec)?;
    let dst = work_dir.join("config.json");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&dst)
        .and_then(|mut f| f.write_all(&data))
        .map_err(|source| SeccompError::Write { path: dst, source })?;
    Ok(((filter, drop), spec))
}

#[cfg(test)]
mod tests;
