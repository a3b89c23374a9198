//! What a rootless daemon needs from the host, checked before anything starts, so that a
//! missing piece is a clear error and never a half-started daemon.

use std::path::{Path, PathBuf};

use super::subid::{self, Range};

/// A program from `PATH` (or the usual sbin/bin directories, which a user's `PATH` may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A sysctl that must have `want` where it exists (kernels without it do not restrict).
fn sysctl_is(path: &str, want: &str) -> Option<String> {
    let v = std::fs::read_to_string(path).ok()?;
    (v.trim() != want).then(|| v.trim().to_string())
}

/// Everything the outer process needs: the helpers, the user's subordinate ranges, and a
/// kernel that lets this user create namespaces.
pub struct Prereqs {
    pub newuidmap: PathBuf,
    pub newgidmap: PathBuf,
    /// The network driver and its program (`net.rs`).
    pub net: (super::net::Kind, PathBuf),
    pub uid: u32,
    pub gid: u32,
    pub subuids: Vec<Range>,
    pub subgids: Vec<Range>,
}

impl Prereqs {
    /// Checks the host; the error lists every missing prerequisite with what to do.
    pub fn check() -> Result<Prereqs, String> {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        let mut missing = Vec::new();
        let mut tool = |name: &str, pkg: &str| {
            find_program(name).unwrap_or_else(|| {
                missing.push(format!(
                    "{name} not found (Debian/Ubuntu: apt-get install {pkg})"
                ));
                PathBuf::new()
            })
        };
        let newuidmap = tool("newuidmap", "uidmap");
        let newgidmap = tool("newgidmap", "uidmap");
        let net = super::net::choose_from_env().unwrap_or_else(|e| {
            missing.push(e);
            (super::net::Kind::Slirp4netns, PathBuf::new())
        });
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        let subuids = subid::ranges(&read("/etc/subuid"), &name, uid);
        // newgidmap looks the caller up in /etc/subgid by user name or uid, not by gid.
        let subgids = subid::ranges(&read("/etc/subgid"), &name, uid);
        if subuids.is_empty() {
            missing.push(format!(
                "no subordinate uids for {name} in /etc/subuid (as root: usermod --add-subuids 100000-165535 {name})"
            ));
        }
        if subgids.is_empty() {
            missing.push(format!(
                "no subordinate gids for {name} in /etc/subgid (as root: usermod --add-subgids 100000-165535 {name})"
            ));
        }
        if let Some(v) = sysctl_is("/proc/sys/kernel/unprivileged_userns_clone", "1") {
            missing.push(format!(
                "kernel.unprivileged_userns_clone is {v} (as root: sysctl -w kernel.unprivileged_userns_clone=1)"
            ));
        }
        if let Some(v) = sysctl_is(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "0",
        ) {
            missing.push(format!(
                "kernel.apparmor_restrict_unprivileged_userns is {v} (as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for berthd that allows userns)"
            ));
        }
        if read("/proc/sys/user/max_user_namespaces").trim() == "0" {
            missing.push(
                "user.max_user_namespaces is 0 (as root: sysctl -w user.max_user_namespaces=15000)"
                    .to_string(),
            );
        }
        // slirp4netns and pasta open the tun device as this user; distributions make it 0666 (udev's
        // default rule), machines without udev may leave it root's only.
        if nix::unistd::access(
            "/dev/net/tun",
            nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
        )
        .is_err()
        {
            missing.push(
                "/dev/net/tun cannot be opened by this user (as root: chmod 0666 /dev/net/tun, the mode udev gives it; opening it grants nothing without CAP_NET_ADMIN)"
                    .to_string(),
            );
        }
        if !missing.is_empty() {
            return Err(format!(
                "rootless berthd cannot start:\n  - {}\nscripts/rootless-setup.sh checks all of this",
                missing.join("\n  - ")
            ));
        }
        Ok(Prereqs {
            newuidmap,
            newgidmap,
            net,
            uid,
            gid,
            subuids,
            subgids,
        })
    }
}
