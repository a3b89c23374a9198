//! `berth-shim`: the per-container monitor. See `docs/shim-protocol.md`.
//!
//! The launcher forks; the child becomes a session leader and child subreaper, creates the
//! container with libcontainer, reports one status line, then serves the control socket on
//! a single-threaded tokio runtime until the container's init exits.

pub mod cgroup;
mod cgroup_v1_mounts;
pub mod cgroupfs;
pub mod errmap;
mod executor;
mod fixup;
mod idmap_helper;
pub mod logs;
mod monitor;
pub mod mountinfo;
pub mod mountns;
mod propagation;
pub mod seccomp;
mod setup;
mod sys;
mod userns_exec;
pub mod util;

pub use setup::main_entry;
