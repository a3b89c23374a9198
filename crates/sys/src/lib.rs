//! Raw Linux calls and kernel files that more than one of berth's processes uses, each handled
//! once: handing unused memory back (berthd and the shim), the file-descriptor mount API
//! (berthd's idmapped layers, the shim's cgroup v1 mounts) and parsing `/proc/<pid>/mountinfo`
//! (berthd's rootless setup, the daemon's mount and cgroup probes, the shim's mount fix-ups).

pub mod memory;
pub mod mount_api;
pub mod mountinfo;
