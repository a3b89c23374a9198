//! The workload executor used on the precompiled-seccomp path (see [`crate::seccomp`]).
//!
//! libcontainer calls `validate` in the container's init (or exec) process once the process is
//! in its namespaces, cgroup and rootfs, has its user and the spec's capabilities (plus those
//! the shim added for the load), and before it reports itself ready. There, after libcontainer's
//! own executable check, the filter is loaded and the added capabilities are dropped again;
//! any failure fails the create (or exec) like other init errors, so no process ever runs
//! without its filter or with the extra capabilities. `exec` makes sure of the same before it
//! hands over to libcontainer's default executor.

use std::sync::atomic::{AtomicBool, Ordering};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use crate::seccomp::{CapDrop, Filter};

/// Set in the container process once the filter is loaded and the capabilities dropped.
static APPLIED: AtomicBool = AtomicBool::new(false);

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[derive(Clone)]
pub struct SeccompExecutor {
    insns: Vec<libc::sock_filter>,
    flags: u32,
    drop: CapDrop,
}

/// Why the precompiled filter could not be put in place (the process does not run).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("capget: {0}")]
    Capget(std::io::Error),
    #[error("load seccomp filter: {0}")]
    Load(std::io::Error),
    #[error("drop capabilities after seccomp: {0}")]
    Capset(std::io::Error),
}

impl SeccompExecutor {
    pub fn new(filter: Filter, drop: CapDrop) -> Self {
        SeccompExecutor {
            insns: instructions(&filter.program),
            flags: filter.flags,
            drop,
        }
    }

    fn apply(&self) -> Result<(), ApplyError> {
        if APPLIED.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Read before the filter is in place: only capset runs under it.
        let caps = if self.drop == CapDrop::default() {
            None
        } else {
            Some(capget().map_err(ApplyError::Capget)?)
        };
        load(&self.insns, self.flags).map_err(ApplyError::Load)?;
        if let Some(mut c) = caps {
            c.effective &= !self.drop.effective;
            c.permitted &= !self.drop.permitted;
            capset(&c).map_err(ApplyError::Capset)?;
        }
        APPLIED.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        self.apply()
            .map_err(|e| ExecutorError::Other(e.to_string()))?;
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)?;
        self.apply()
            .map_err(|e| ExecutorValidationError::ArgValidationError(e.to_string()))
    }
}

/// Decodes the exported program (host byte order `sock_filter` records).
fn instructions(program: &[u8]) -> Vec<libc::sock_filter> {
    program
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`; allocates nothing.
fn load(insns: &[libc::sock_filter], flags: u32) -> std::io::Result<()> {
    let len =
        u16::try_from(insns.len()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads (copies) the program.
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` initialized instructions that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => Ok(()),
        rc if rc > 0 => Err(std::io::Error::other(format!(
            "thread {rc} could not be synchronized"
        ))),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

pub(crate) fn capget() -> std::io::Result<CapSets> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 takes two data records, both valid for writing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(CapSets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

pub(crate) fn capset(c: &CapSets) -> std::io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // The low and the high 32 bits, as the kernel's two `__user_cap_data_struct`s.
    let split = |v: u64| {
        let low = u32::try_from(v & u64::from(u32::MAX)).unwrap_or(u32::MAX);
        let high = u32::try_from(v >> 32).unwrap_or(u32::MAX);
        (low, high)
    };
    let (e0, e1) = split(c.effective);
    let (p0, p1) = split(c.permitted);
    let (i0, i1) = split(c.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: version 3 reads two data records, both initialized.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_decode_host_order_records() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&0x15u16.to_ne_bytes());
        raw.extend_from_slice(&[1, 2]);
        raw.extend_from_slice(&0xc000_003eu32.to_ne_bytes());
        let i = instructions(&raw);
        assert_eq!(i.len(), 1);
        assert_eq!(
            (i[0].code, i[0].jt, i[0].jf, i[0].k),
            (0x15, 1, 2, 0xc000_003e)
        );
    }

    /// Runs `f` in a forked child (which must not allocate) and returns its exit code.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes raw system calls and leaves with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = f();
                // SAFETY: ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            pid if pid > 0 => {
                let mut st = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut st, 0) };
                assert!(libc::WIFEXITED(st), "child died: {st:#x}");
                libc::WEXITSTATUS(st)
            }
            _ => panic!("fork failed"),
        }
    }

    fn getcwd_errno() -> i32 {
        let mut buf = [0u8; 256];
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        }
    }

    fn getcwd_eagain_filter() -> Filter {
        let p: libcontainer::oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11}],
            }))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::seccomp::cached_filter(dir.path(), &p).unwrap()
    }

    #[test]
    fn the_cached_program_is_what_the_kernel_enforces() {
        let ex = SeccompExecutor::new(getcwd_eagain_filter(), CapDrop::default());
        let code = in_child(|| {
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if getcwd_errno() != 0 {
                return 10;
            }
            if ex.apply().is_err() {
                return 11;
            }
            if getcwd_errno() != libc::EAGAIN {
                return 12;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn sys_admin_is_dropped_after_the_load() {
        if capget()
            .map(|c| c.effective & (1 << 21) == 0)
            .unwrap_or(true)
        {
            eprintln!("skipped: needs CAP_SYS_ADMIN");
            return;
        }
        let drop = CapDrop {
            effective: 1 << 21,
            permitted: 1 << 21,
        };
        let ex = SeccompExecutor::new(getcwd_eagain_filter(), drop);
        let code = in_child(|| {
            let Ok(before) = capget() else { return 10 };
            if ex.apply().is_err() {
                return 11;
            }
            let Ok(after) = capget() else { return 12 };
            if after.effective != before.effective & !(1 << 21)
                || after.permitted != before.permitted & !(1 << 21)
                || after.inheritable != before.inheritable
            {
                return 13;
            }
            if getcwd_errno() != libc::EAGAIN {
                return 14;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn capget_reads_this_process() {
        let c = capget().expect("capget");
        assert_eq!(
            c.effective & !c.permitted,
            0,
            "effective is within permitted"
        );
    }
}
