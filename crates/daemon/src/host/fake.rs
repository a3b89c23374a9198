//! Recording fakes of every kernel seam, for unit tests: each call is recorded as a line
//! (`"mount_overlay /…/merged"`), and a test can make the n-th call of an operation fail.
//! Mounts and namespaces are remembered so that the daemon's own checks see them; shims are
//! served in-process ([`super::fake_shim`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_network::ops::Attachment;
use berth_shim_protocol::{ShimConfig, StartError};

use super::fake_shim::{Behaviour, FakeShim};
use super::{CgroupFiles, Firewall, Host, LinkOps, Netns, RemapOps, RuntimeOps};
use crate::lock;
use crate::resources::CgroupPaths;

/// A pid no process can have (above the kernel's `pid_max` limit of 2^22): whatever the daemon
/// does to it directly (signals, `/proc`) finds nothing.
pub(crate) const FAKE_PID: u32 = 999_999_999;

/// The fake kernel.
#[derive(Default)]
pub(crate) struct FakeHost {
    calls: Mutex<Vec<String>>,
    counts: Mutex<HashMap<String, usize>>,
    /// Operation → the call number (1-based) that fails.
    failures: Mutex<HashMap<String, usize>>,
    mounts: Mutex<HashSet<PathBuf>>,
    /// The lower directories of each overlay mounted, by target.
    overlays: Mutex<HashMap<PathBuf, Vec<PathBuf>>>,
    namespaces: Mutex<HashSet<PathBuf>>,
    links: Mutex<HashSet<String>>,
    shims: Mutex<HashMap<String, Arc<FakeShim>>>,
    /// How the next launched shims behave.
    behaviour: Mutex<Behaviour>,
    /// Where `paths_of` places a container's cgroup directories (a temporary directory).
    cgroup_root: Mutex<Option<PathBuf>>,
    /// The cgroup file writes, in order: (file, value).
    writes: Mutex<Vec<(PathBuf, String)>>,
    /// The last nftables script applied.
    nft: Mutex<Option<String>>,
    /// Whether idmapped mounts "work" here (`RemapOps::idmap_supported`).
    idmap: Mutex<bool>,
    /// The runtime shims are served on (`None`: the launching task's), so that they can
    /// outlive a daemon whose runtime is dropped (a daemon restart).
    shim_runtime: Mutex<Option<tokio::runtime::Handle>>,
}

impl FakeHost {
    pub(crate) fn new() -> Arc<FakeHost> {
        let fake = FakeHost::default();
        *lock(&fake.idmap) = true;
        Arc::new(fake)
    }

    /// The seams of a daemon over this fake.
    pub(crate) fn host(self: &Arc<Self>) -> Host {
        Host {
            runtime: self.clone(),
            links: self.clone(),
            netns: self.clone(),
            firewall: self.clone(),
            cgroups: self.clone(),
            remap: self.clone(),
        }
    }

    /// Whether the fake kernel takes idmapped mounts (it does unless told otherwise).
    pub(crate) fn set_idmap_supported(&self, yes: bool) {
        *lock(&self.idmap) = yes;
    }

    /// Every call so far, in order.
    pub(crate) fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// How many times `op` was called.
    pub(crate) fn count(&self, op: &str) -> usize {
        lock(&self.counts).get(op).copied().unwrap_or(0)
    }

    /// Makes the `n`-th call (1-based, counted from the beginning) of `op` fail.
    pub(crate) fn fail_at(&self, op: &str, n: usize) {
        lock(&self.failures).insert(op.to_string(), n);
    }

    /// How shims launched from now on behave.
    pub(crate) fn set_behaviour(&self, b: Behaviour) {
        *lock(&self.behaviour) = b;
    }

    /// Shims launched from now on are served on `rt`, not on the daemon's runtime: a test can
    /// drop the daemon's runtime (berthd going away) while they run on.
    pub(crate) fn serve_shims_on(&self, rt: tokio::runtime::Handle) {
        *lock(&self.shim_runtime) = Some(rt);
    }

    /// The running fake shim of container `id`.
    pub(crate) fn shim(&self, id: &str) -> Option<Arc<FakeShim>> {
        lock(&self.shims).get(id).cloned()
    }

    pub(crate) fn is_mounted(&self, path: &Path) -> bool {
        lock(&self.mounts).contains(path)
    }

    /// The lower directories (top first) of the last overlay mounted on `target`.
    pub(crate) fn lowers_of(&self, target: &Path) -> Vec<PathBuf> {
        lock(&self.overlays)
            .get(target)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn mounts(&self) -> usize {
        lock(&self.mounts).len()
    }

    pub(crate) fn namespaces(&self) -> usize {
        lock(&self.namespaces).len()
    }

    /// The cgroup directories `paths_of` reports are under `root` (cgroup v2 layout).
    pub(crate) fn set_cgroup_root(&self, root: &Path) {
        *lock(&self.cgroup_root) = Some(root.to_owned());
    }

    pub(crate) fn writes(&self) -> Vec<(PathBuf, String)> {
        lock(&self.writes).clone()
    }

    pub(crate) fn nft_script(&self) -> Option<String> {
        lock(&self.nft).clone()
    }

    /// Records a call; an error when the test asked this call to fail.
    fn record(&self, op: &str, arg: impl std::fmt::Display) -> io::Result<()> {
        lock(&self.calls).push(format!("{op} {arg}"));
        let n = {
            let mut counts = lock(&self.counts);
            let n = counts.entry(op.to_string()).or_default();
            *n += 1;
            *n
        };
        if lock(&self.failures).get(op) == Some(&n) {
            return Err(io::Error::other(format!(
                "injected failure of {op} (call {n})"
            )));
        }
        Ok(())
    }
}

impl RuntimeOps for FakeHost {
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        _upper: &Path,
        _work: &Path,
        target: &Path,
        _volatile: bool,
    ) -> io::Result<()> {
        self.record("mount_overlay", target.display())?;
        std::fs::create_dir_all(target)?;
        lock(&self.overlays).insert(target.to_owned(), lowers.to_vec());
        lock(&self.mounts).insert(target.to_owned());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.record("unmount", target.display())?;
        lock(&self.mounts).remove(target);
        Ok(())
    }

    fn is_mount_point(&self, path: &Path) -> bool {
        lock(&self.mounts).contains(path)
    }

    fn launch_shim(
        &self,
        _shim: &Path,
        _config: &Path,
        cfg: &ShimConfig,
    ) -> Result<u32, StartError> {
        self.record("launch_shim", &cfg.id)
            .map_err(|e| StartError::from(e.to_string()))?;
        let behaviour = lock(&self.behaviour).clone();
        if let Some(e) = behaviour.launch_error.clone() {
            return Err(e);
        }
        let rt = lock(&self.shim_runtime).clone();
        let _entered = rt.as_ref().map(tokio::runtime::Handle::enter);
        let shim = FakeShim::serve(cfg, behaviour).map_err(|e| StartError::from(e.to_string()))?;
        lock(&self.shims).insert(cfg.id.clone(), shim);
        Ok(FAKE_PID)
    }

    fn loopback_up(&self, pid: u32) -> io::Result<()> {
        self.record("loopback_up", pid)
    }

    fn prime_cgroup_migration(&self) {}
}

/// Idmapped views are remembered as mounts; a copy is an empty directory; owner changes are
/// only recorded (an unprivileged test could not make them).
impl RemapOps for FakeHost {
    fn idmap_supported(&self) -> bool {
        *lock(&self.idmap)
    }

    fn mount_idmapped(
        &self,
        map: &crate::userns_remap::IdMap,
        layers: &[(PathBuf, PathBuf)],
    ) -> io::Result<()> {
        for (layer, view) in layers {
            if lock(&self.mounts).contains(view) {
                continue;
            }
            self.record(
                "mount_idmapped",
                format!("{} {} {}", map.dir_name(), layer.display(), view.display()),
            )?;
            std::fs::create_dir_all(view)?;
            lock(&self.mounts).insert(view.clone());
        }
        Ok(())
    }

    fn is_idmapped(&self, view: &Path) -> bool {
        lock(&self.mounts).contains(view)
    }

    fn unmount_idmapped(&self, view: &Path) -> io::Result<()> {
        self.record("unmount_idmapped", view.display())?;
        lock(&self.mounts).remove(view);
        Ok(())
    }

    fn copy_tree(&self, src: &Path, dst: &Path) -> io::Result<()> {
        self.record("copy_tree", src.display())?;
        std::fs::create_dir_all(dst)
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.record("chown", format!("{uid}:{gid} {}", path.display()))
    }
}

impl FakeHost {
    /// A namespace "pinned" at `path`: the placeholder file, remembered as mounted.
    fn pin_at(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, b"")?;
        lock(&self.namespaces).insert(path.to_owned());
        Ok(())
    }
}

impl Netns for FakeHost {
    fn create(&self, path: &Path) -> io::Result<()> {
        self.record("netns_create", path.display())?;
        self.pin_at(path)
    }

    fn create_with_lo_up(&self, path: &Path) -> io::Result<()> {
        self.record("netns_create_lo_up", path.display())?;
        self.pin_at(path)
    }

    fn pin(&self, source: &Path, path: &Path) -> io::Result<()> {
        self.record(
            "netns_pin",
            format!("{} {}", source.display(), path.display()),
        )?;
        self.pin_at(path)
    }

    fn is_mounted(&self, path: &Path) -> bool {
        lock(&self.namespaces).contains(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.record("netns_remove", path.display())?;
        lock(&self.namespaces).remove(path);
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl LinkOps for FakeHost {
    fn ensure_bridge(&self, name: &str, addr: Ipv4Addr, prefix: u8) -> berth_network::Result<()> {
        self.record("ensure_bridge", format!("{name} {addr}/{prefix}"))
            .map_err(net_err)?;
        lock(&self.links).insert(name.to_string());
        Ok(())
    }

    fn delete_link(&self, name: &str) -> berth_network::Result<()> {
        self.record("delete_link", name).map_err(net_err)?;
        lock(&self.links).remove(name);
        Ok(())
    }

    fn link_exists(&self, name: &str) -> bool {
        lock(&self.links).contains(name)
    }

    fn bridge_ports(&self, _bridge: &str) -> Vec<String> {
        Vec::new()
    }

    fn attach(&self, a: &Attachment) -> berth_network::Result<()> {
        self.record(
            "attach",
            format!("{} {} {}/{}", a.bridge, a.ifname, a.address, a.prefix),
        )
        .map_err(net_err)?;
        lock(&self.links).insert(a.host_ifname.clone());
        Ok(())
    }

    fn set_default_routes(
        &self,
        netns: &Path,
        v4: Option<(&str, Ipv4Addr)>,
        _v6: Option<(&str, Ipv6Addr)>,
    ) -> berth_network::Result<()> {
        self.record("set_default_routes", format!("{} {v4:?}", netns.display()))
            .map_err(net_err)
    }

    fn ensure_bridge_v6(
        &self,
        name: &str,
        addr: Ipv6Addr,
        prefix: u8,
        _forwarding: bool,
    ) -> berth_network::Result<()> {
        self.record("ensure_bridge_v6", format!("{name} {addr}/{prefix}"))
            .map_err(net_err)
    }
}

impl Firewall for FakeHost {
    fn apply_nft(&self, script: &str) -> berth_network::Result<()> {
        self.record("apply_nft", script.lines().count())
            .map_err(net_err)?;
        *lock(&self.nft) = Some(script.to_string());
        Ok(())
    }

    fn refresh_host_chain(
        &self,
        chain: &str,
        _bridges: &[String],
    ) -> berth_network::Result<Vec<String>> {
        self.record("refresh_host_chain", chain).map_err(net_err)?;
        Ok(Vec::new())
    }
}

impl CgroupFiles for FakeHost {
    fn paths_of(&self, pid: i64) -> Option<CgroupPaths> {
        let root = lock(&self.cgroup_root).clone()?;
        (pid == i64::from(FAKE_PID)).then(|| CgroupPaths {
            v1: Vec::new(),
            v2: Some(root),
        })
    }

    fn write(&self, file: &Path, value: &str) -> io::Result<()> {
        self.record("cgroup_write", file.display())?;
        lock(&self.writes).push((file.to_owned(), value.to_string()));
        Ok(())
    }
}

fn net_err(source: io::Error) -> berth_network::Error {
    berth_network::Error::Io {
        what: "fake link operation".into(),
        source,
    }
}
