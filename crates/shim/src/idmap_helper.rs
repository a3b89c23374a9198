//! Id maps of more than one line for a container's new user namespace (`--userns-remap` of a
//! user with several subordinate ranges). libcontainer writes a one-line map itself but hands
//! a longer one to `newuidmap`/`newgidmap` found on `PATH`; Debian's check the ranges against
//! the *caller's* subordinate ids, and root (the shim) has none, so the map would stay empty.
//! The shim therefore puts its own helpers first on its `PATH` for such a container: links
//! named `newuidmap` and `newgidmap` to `berth-shim` in the bundle, and started under those
//! names it writes the map it is given, in one write, as root may (`user_namespaces(7)`).

use std::io;
use std::path::Path;

/// The map file a helper invoked as `argv0` writes (`None`: not a helper name).
pub(crate) fn map_file_of(argv0: &str) -> Option<&'static str> {
    match Path::new(argv0).file_name()?.to_str()? {
        "newuidmap" => Some("uid_map"),
        "newgidmap" => Some("gid_map"),
        _ => None,
    }
}

/// `newuidmap PID (ID LOWER COUNT)...` as root: the lines written to `/proc/PID/<map_file>`.
pub(crate) fn run(map_file: &str, args: &[String]) -> i32 {
    match map_text(args) {
        Ok((pid, text)) => match std::fs::write(format!("/proc/{pid}/{map_file}"), text) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("berth-shim: writing /proc/{pid}/{map_file}: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("berth-shim: {e}");
            1
        }
    }
}

/// The target pid and the map's text from a helper's arguments (after argv0).
fn map_text(args: &[String]) -> Result<(u32, String), String> {
    let (pid, triples) = args
        .split_first()
        .ok_or_else(|| "usage: newuidmap PID ID LOWER COUNT...".to_string())?;
    let pid: u32 = pid.parse().map_err(|_| format!("bad pid {pid:?}"))?;
    if triples.is_empty() || triples.len() % 3 != 0 {
        return Err("usage: newuidmap PID ID LOWER COUNT...".into());
    }
    let mut text = String::new();
    for t in triples.chunks(3) {
        let n: Vec<u32> = t
            .iter()
            .map(|v| v.parse().map_err(|_| format!("bad id {v:?}")))
            .collect::<Result<_, _>>()?;
        text.push_str(&format!("{} {} {}\n", n[0], n[1], n[2]));
    }
    Ok((pid, text))
}

/// Puts the helpers first on `PATH` when the bundle's spec gives a new user namespace a map
/// of more than one line. Must run before any thread starts (it changes the environment).
pub(crate) fn provide(bundle: &Path) -> io::Result<()> {
    let Ok(raw) = std::fs::read(bundle.join("config.json")) else {
        return Ok(());
    };
    let spec: serde_json::Value = serde_json::from_slice(&raw).map_err(io::Error::other)?;
    let lines = |k: &str| spec["linux"][k].as_array().map_or(0, Vec::len);
    if lines("uidMappings") <= 1 && lines("gidMappings") <= 1 {
        return Ok(());
    }
    let dir = bundle.join("idmap-helpers");
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    for name in ["newuidmap", "newgidmap"] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&exe, &link)?;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path)))
        .map_err(io::Error::other)?;
    std::env::set_var("PATH", joined);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_arguments_become_map_lines() {
        assert_eq!(map_file_of("/x/idmap-helpers/newuidmap"), Some("uid_map"));
        assert_eq!(map_file_of("newgidmap"), Some("gid_map"));
        assert_eq!(map_file_of("/usr/bin/berth-shim"), None);
        let args: Vec<String> = ["42", "0", "100000", "65536", "65536", "300000", "10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            map_text(&args).unwrap(),
            (42, "0 100000 65536\n65536 300000 10\n".to_string())
        );
        assert!(map_text(&args[..3]).is_err());
        assert!(map_text(&[]).is_err());
    }
}
