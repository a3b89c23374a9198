//! The OCI image-spec types berth reads and writes in more than one place: content
//! [`Descriptor`]s (in manifests, indexes and `index.json` of image archives), the
//! [`Platform`] a descriptor or `--platform` names, and the media types. Archives (`load`,
//! `save`) and the registry client (`pull`, `push`) share them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::host_platform;
use crate::digest::Digest;

/// Media types of manifests, indexes, configs and layers.
pub mod media_types {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// A reference to content by digest: what a manifest says of its config and layers, and an
/// index of its manifests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    /// A descriptor of `size` bytes of `media_type` content at `digest`, nothing else said.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: None,
            platform: None,
            urls: None,
        }
    }
}

/// An operating system and architecture (and variant), as in an index entry or `--platform`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A `--platform` that names no operating system or architecture Go knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\": unknown operating system or architecture: invalid argument")]
pub struct UnknownPlatform(pub String);

impl Platform {
    /// Parses `os[/arch[/variant]]` as `--platform` takes it; arch aliases normalised
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Platform, UnknownPlatform> {
        let unknown = || UnknownPlatform(s.to_string());
        let parts: Vec<&str> = s.split('/').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(unknown());
        }
        let (os, arch) = if parts.len() == 1 {
            // containerd's platforms.Parse: one word is a known OS (on this host's
            // architecture) or a known architecture (on linux); anything else is refused.
            let word = parts[0].to_lowercase();
            if KNOWN_OS.contains(&word.as_str()) {
                let host = Platform::host();
                return Ok(Platform { os: word, ..host });
            }
            if !KNOWN_ARCH.contains(&normalize_arch(&word, None).0.as_str()) {
                return Err(unknown());
            }
            ("linux".to_string(), word)
        } else {
            (parts[0].to_lowercase(), parts[1].to_lowercase())
        };
        let (architecture, mut variant) =
            normalize_arch(&arch, parts.get(2).map(|v| v.to_lowercase()));
        if architecture == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform {
            architecture,
            os,
            variant,
        })
    }

    /// The platform of this host (`linux/amd64` here).
    pub fn host() -> Platform {
        let (arch, variant) = host_platform();
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            variant: variant.filter(|v| *v != "v8").map(str::to_string),
        }
    }

    /// Whether an image of platform `other` serves this one (a missing variant matches any).
    pub fn matches(&self, other: &Platform) -> bool {
        let (arch, variant) = normalize_arch(&other.architecture, other.variant.clone());
        let variant = variant.filter(|v| !(arch == "arm64" && v == "v8"));
        if self.os != other.os || self.architecture != arch {
            return false;
        }
        match (&self.variant, &variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The operating systems and architectures Go knows (containerd's `platforms` database).
const KNOWN_OS: [&str; 17] = [
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];
const KNOWN_ARCH: [&str; 24] = [
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    match arch {
        "x86_64" | "x86-64" => ("amd64".into(), None),
        "aarch64" | "arm64" => ("arm64".into(), variant),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "i386" => ("386".into(), None),
        a => (a.into(), variant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_as_containerd_does() {
        assert!(Platform::parse("linux//x").is_err());
        // One word: a known OS or a known architecture, as containerd's platforms.Parse.
        assert_eq!(
            Platform::parse("bogus").unwrap_err().to_string(),
            "\"bogus\": unknown operating system or architecture: invalid argument"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        assert_eq!(
            Platform::parse("Linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        let any_arm = Platform::parse("linux/arm").unwrap();
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(any_arm.matches(&v7) && v7.matches(&v7));
        assert!(!v7.matches(&Platform::parse("linux/arm/v6").unwrap()));
    }

    #[test]
    fn descriptors_round_trip_without_empty_fields() {
        let d = Descriptor::new(media_types::OCI_CONFIG, Digest::sha256_of(b"x"), 1);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["digest", "mediaType", "size"]
        );
        let back: Descriptor = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        // An archive's index entry may omit the media type.
        let bare: Descriptor = serde_json::from_str(&format!(
            r#"{{"digest":"{}","size":2}}"#,
            Digest::sha256_of(b"y")
        ))
        .unwrap();
        assert!(bare.media_type.is_empty());
    }
}
