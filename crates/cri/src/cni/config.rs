//! CNI network configuration lists (`.conflist`) and single configs (`.conf`/`.json`), and
//! picking the one a pod network uses from the conf dir (the lexically first, as containerd does).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::CniError;

/// A network configuration list: its plugins run in order on ADD and CHECK, in reverse on DEL.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    /// Each plugin's config object as written (with `type`, and `capabilities` if any).
    pub plugins: Vec<Map<String, Value>>,
    /// Where it was loaded from, if from a file.
    pub source: Option<PathBuf>,
}

impl NetworkConfigList {
    /// Parses a `.conflist` document.
    pub fn from_list_json(bytes: &[u8]) -> Result<Self, CniError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| CniError::config(None, e))?;
        let obj = v
            .as_object()
            .ok_or_else(|| CniError::config(None, "not a JSON object"))?;
        let name = str_field(obj, "name")?;
        let cni_version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let disable_check = match obj.get("disableCheck") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let plugins = obj
            .get("plugins")
            .and_then(Value::as_array)
            .ok_or_else(|| CniError::config(None, "no 'plugins' list"))?;
        if plugins.is_empty() {
            return Err(CniError::config(None, "'plugins' is empty"));
        }
        let plugins = plugins
            .iter()
            .map(|p| {
                let p = p
                    .as_object()
                    .ok_or_else(|| CniError::config(None, "a plugin is not a JSON object"))?;
                str_field(p, "type")?;
                Ok(p.clone())
            })
            .collect::<Result<Vec<_>, CniError>>()?;
        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check,
            plugins,
            source: None,
        })
    }

    /// Parses a single-plugin `.conf` document as a list of that one plugin.
    pub fn from_conf_json(bytes: &[u8]) -> Result<Self, CniError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| CniError::config(None, e))?;
        let obj = v
            .as_object()
            .ok_or_else(|| CniError::config(None, "not a JSON object"))?;
        let name = str_field(obj, "name")?;
        str_field(obj, "type")?;
        let cni_version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check: false,
            plugins: vec![obj.clone()],
            source: None,
        })
    }

    /// Reads a config file by its extension (`.conflist`, else a single config).
    pub fn load_file(path: &Path) -> Result<Self, CniError> {
        let bytes = std::fs::read(path).map_err(|e| CniError::config(Some(path), e))?;
        let parsed = if path.extension().is_some_and(|e| e == "conflist") {
            Self::from_list_json(&bytes)
        } else {
            Self::from_conf_json(&bytes)
        };
        let mut list = parsed.map_err(|e| e.with_path(path))?;
        list.source = Some(path.to_path_buf());
        Ok(list)
    }

    /// The network of `dir`: its lexically first `.conflist`, `.conf` or `.json` file, or `None`
    /// when there is none (the pod network is then not ready).
    pub fn load_dir(dir: &Path) -> Result<Option<Self>, CniError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CniError::config(Some(dir), e)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e == "conflist" || e == "conf" || e == "json")
            })
            .collect();
        files.sort();
        match files.first() {
            Some(f) => Self::load_file(f).map(Some),
            None => Ok(None),
        }
    }

    /// The list as JSON again (what an attachment record keeps for DEL after a restart).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "cniVersion": self.cni_version,
            "name": self.name,
            "disableCheck": self.disable_check,
            "plugins": self.plugins,
        })
    }

    /// Whether the list's version supports CHECK (0.4.0 and later).
    pub fn supports_check(&self) -> bool {
        version_at_least(&self.cni_version, (0, 4, 0))
    }
}

fn str_field(obj: &Map<String, Value>, key: &str) -> Result<String, CniError> {
    match obj.get(key).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(CniError::config(None, format!("missing '{key}'"))),
    }
}

/// Compares a semantic version string to `min` (missing parts count as 0).
pub fn version_at_least(v: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let got = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    got >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_file_wins_and_conf_becomes_a_list() {
        let dir = tempfile::tempdir().unwrap();
        assert!(NetworkConfigList::load_dir(dir.path()).unwrap().is_none());
        assert!(NetworkConfigList::load_dir(&dir.path().join("absent"))
            .unwrap()
            .is_none());
        std::fs::write(
            dir.path().join("20-b.conflist"),
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-a.conf"),
            r#"{"cniVersion":"0.4.0","name":"a","type":"ptp"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("00-ignored.txt"), "x").unwrap();
        let l = NetworkConfigList::load_dir(dir.path()).unwrap().unwrap();
        assert_eq!(l.name, "a");
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugins[0]["type"], "ptp");
        assert!(l.supports_check());
        std::fs::remove_file(dir.path().join("10-a.conf")).unwrap();
        let l = NetworkConfigList::load_dir(dir.path()).unwrap().unwrap();
        assert_eq!(l.name, "b");
        assert_eq!(l.plugins.len(), 2);
        assert_eq!(
            l.source.as_deref(),
            Some(dir.path().join("20-b.conflist").as_path())
        );
        let again = NetworkConfigList::from_list_json(l.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(again.plugins, l.plugins);
    }

    #[test]
    fn bad_configs_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.conflist");
        std::fs::write(
            &p,
            r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"name":"no type"}]}"#,
        )
        .unwrap();
        let e = NetworkConfigList::load_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1.conflist") && e.contains("missing 'type'"),
            "{e}"
        );
        std::fs::write(&p, "{").unwrap();
        assert!(NetworkConfigList::load_dir(dir.path()).is_err());
    }

    #[test]
    fn versions() {
        assert!(version_at_least("1.0.0", (0, 4, 0)));
        assert!(version_at_least("0.4.0", (0, 4, 0)));
        assert!(!version_at_least("0.3.1", (0, 4, 0)));
        assert!(!version_at_least("", (0, 4, 0)));
    }
}
