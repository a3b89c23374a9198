//! The Docker/OCI image config JSON (`application/vnd.oci.image.config.v1+json`,
//! `application/vnd.docker.container.image.v1+json`).
//!
//! Every struct keeps unknown keys in a flattened `extra` map so that parsing and
//! re-serialising never drops fields. Note that an image id is the digest of the config
//! *bytes*: keep the original bytes when you have them and only serialise configs you
//! create.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Top-level image config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// RFC 3339 timestamp, kept as the original string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Legacy Docker field (set by `docker import` and `docker commit -m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// Legacy Docker field: id of the build container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Legacy Docker field: config of the build container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
    /// Unknown top-level keys, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    /// Parse config JSON.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::json("image config", e))
    }

    /// Serialise to compact JSON (the form Docker hashes for the image id).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::json("image config", e))
    }

    /// The layer diff ids, bottom first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.rootfs.diff_ids
    }

    /// `created` parsed as a UTC timestamp, when present and valid.
    pub fn created_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let c = self.created.as_deref()?;
        chrono::DateTime::parse_from_rfc3339(c)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// `rootfs` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers_type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn layers_type() -> String {
    "layers".to_string()
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers_type(),
            diff_ids: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// One `history` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The runtime defaults inside an image config (`config` / `container_config`), with
/// Docker's capitalised keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_stdin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_stdout: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_stderr: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_stdin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_once: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<StrSlice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<StrSlice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<StrSlice>,
    /// Unknown keys, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Healthcheck` (durations in nanoseconds, as Docker stores them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Docker's `StrSlice`: accepts a JSON array of strings or a single string (which
/// becomes a one-element list); always serialises as an array. `null` is handled by the
/// surrounding `Option`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StrSlice(pub Vec<String>);

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Either::deserialize(d)? {
            Either::One(s) => StrSlice(vec![s]),
            Either::Many(v) => StrSlice(v),
        })
    }
}

impl From<Vec<String>> for StrSlice {
    fn from(v: Vec<String>) -> Self {
        StrSlice(v)
    }
}

impl std::ops::Deref for StrSlice {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        &self.0
    }
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The host's architecture in OCI/Go naming (`amd64`, `arm64`, ...) and variant.
pub fn host_platform() -> (&'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = r#"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Image":"sha256:abc","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null,"ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"FutureKey":{"x":1}},"container":"deadbeef","created":"2023-05-18T22:34:17.690170052Z","docker_version":"20.10.23","history":[{"created":"2023-05-18T22:34:17.512515046Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created":"2023-05-18T22:34:17.690170052Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:9547b4c33213e630a0ca602a989ecc094e042146ae8afa502e1e65af6473db03"]},"moby.buildkit.cache.v0":"xyz"}"#;

    #[test]
    fn parses_real_config_and_round_trips() {
        let c = ImageConfig::from_slice(REAL.as_bytes()).unwrap();
        assert_eq!(c.architecture, "amd64");
        assert_eq!(c.diff_ids().len(), 1);
        assert_eq!(c.history.len(), 2);
        assert_eq!(c.history[1].empty_layer, Some(true));
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.cmd.as_deref(), Some(&vec!["sh".to_string()]));
        assert_eq!(cc.entrypoint, None);
        assert!(cc.extra.contains_key("FutureKey"));
        assert!(c.extra.contains_key("moby.buildkit.cache.v0"));
        assert!(c.created_time().is_some());

        let again = ImageConfig::from_slice(&c.to_vec().unwrap()).unwrap();
        assert_eq!(again, c);
        // Every non-null key of the original survives.
        let orig: Value = serde_json::from_str(REAL).unwrap();
        let out: Value = serde_json::to_value(&c).unwrap();
        fn check(a: &Value, b: &Value, at: &str) {
            if let (Value::Object(a), Value::Object(b)) = (a, b) {
                for (k, v) in a {
                    if v.is_null() {
                        continue;
                    }
                    let w = b.get(k).unwrap_or_else(|| panic!("lost {at}.{k}"));
                    check(v, w, &format!("{at}.{k}"));
                }
            } else {
                assert_eq!(a, b, "{at}");
            }
        }
        check(&orig, &out, "");
    }

    #[test]
    fn strslice_accepts_string_array_and_null() {
        let c: ContainerConfig =
            serde_json::from_str(r#"{"Cmd":"echo hi","Entrypoint":["/bin/sh","-c"],"Shell":null}"#)
                .unwrap();
        assert_eq!(c.cmd, Some(StrSlice(vec!["echo hi".into()])));
        assert_eq!(c.entrypoint.unwrap().0, vec!["/bin/sh", "-c"]);
        assert_eq!(c.shell, None);
    }

    #[test]
    fn minimal_oci_config() {
        let c = ImageConfig::from_slice(
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":null}}"#,
        )
        .unwrap();
        assert!(c.diff_ids().is_empty());
        assert!(c.config.is_none());
    }
}
