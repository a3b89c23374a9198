//! Raw Linux calls that more than one of berth's processes makes, each wrapped once: handing
//! unused memory back (berthd and the shim) and the file-descriptor mount API (berthd's
//! idmapped layers, the shim's cgroup v1 mounts).

pub mod memory;
pub mod mount_api;
