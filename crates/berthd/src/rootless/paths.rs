//! Where a rootless berthd keeps its things, as Docker's rootless mode does: data under
//! `$XDG_DATA_HOME/berth` (`~/.local/share/berth`), sockets and runtime state under
//! `$XDG_RUNTIME_DIR/berth`, the config file at `$XDG_CONFIG_HOME/berth/daemon.json`
//! (`~/.config/berth/daemon.json`).

use std::path::PathBuf;

/// The defaults a daemon falls back to when neither a flag nor the config file says.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub config_file: PathBuf,
    pub host: String,
}

impl Defaults {
    /// A root daemon's.
    pub fn system() -> Defaults {
        Defaults {
            data_root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            config_file: PathBuf::from("/etc/berth/daemon.json"),
            host: "unix:///run/berth/berth.sock".to_string(),
        }
    }

    /// A rootless daemon's, from the environment `env` (`XDG_RUNTIME_DIR` is required:
    /// without it there is no per-user place for the socket that only this user can reach).
    pub fn user(env: impl Fn(&str) -> Option<String>) -> Result<Defaults, String> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty() && v.starts_with('/'));
        let runtime = var("XDG_RUNTIME_DIR").ok_or_else(|| {
            "rootless berthd needs XDG_RUNTIME_DIR (a directory only this user can write, such as /run/user/$(id -u)); scripts/rootless-setup.sh explains the setup".to_string()
        })?;
        let home = var("HOME");
        let under_home = |xdg: &str, rel: &str| -> Result<PathBuf, String> {
            var(xdg)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| PathBuf::from(h).join(rel)))
                .ok_or_else(|| format!("rootless berthd needs {xdg} or HOME"))
        };
        let exec_root = PathBuf::from(runtime).join("berth");
        Ok(Defaults {
            data_root: under_home("XDG_DATA_HOME", ".local/share")?.join("berth"),
            config_file: under_home("XDG_CONFIG_HOME", ".config")?.join("berth/daemon.json"),
            host: format!("unix://{}", exec_root.join("berth.sock").display()),
            exec_root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn user_defaults_follow_xdg_and_home() {
        let d = Defaults::user(env(&[
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(d.data_root, PathBuf::from("/home/u/.local/share/berth"));
        assert_eq!(d.exec_root, PathBuf::from("/run/user/1000/berth"));
        assert_eq!(
            d.config_file,
            PathBuf::from("/home/u/.config/berth/daemon.json")
        );
        assert_eq!(d.host, "unix:///run/user/1000/berth/berth.sock");
        let d = Defaults::user(env(&[
            ("XDG_RUNTIME_DIR", "/r"),
            ("XDG_DATA_HOME", "/d"),
            ("XDG_CONFIG_HOME", "/c"),
        ]))
        .unwrap();
        assert_eq!(d.data_root, PathBuf::from("/d/berth"));
        assert_eq!(d.config_file, PathBuf::from("/c/berth/daemon.json"));
    }

    #[test]
    fn user_defaults_need_a_runtime_dir() {
        let e = Defaults::user(env(&[("HOME", "/home/u")])).unwrap_err();
        assert!(e.contains("XDG_RUNTIME_DIR"), "{e}");
        // Relative values are ignored, as the XDG spec says.
        assert!(Defaults::user(env(&[("XDG_RUNTIME_DIR", "run"), ("HOME", "/h")])).is_err());
    }
}
