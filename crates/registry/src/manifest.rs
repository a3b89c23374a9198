//! Image manifests and indexes (Docker schema 2 and OCI), and platform selection.

use berth_image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What a pull accepts, best first.
pub const ACCEPT_MANIFESTS: [&str; 4] = [OCI_INDEX, DOCKER_LIST, DOCKER_MANIFEST, OCI_MANIFEST];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// An image manifest: one config and its layers, bottom first.
#[derive(Debug, Clone)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Vec<Descriptor>),
}

impl Manifest {
    /// Parses by the `Content-Type` the registry sent, falling back to the document's own
    /// `mediaType` and shape (some registries send `application/json`).
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest> {
        let raw: RawManifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidManifest(format!("invalid manifest: {e}")))?;
        if raw.schema_version == 1 {
            return Err(Error::InvalidManifest(
                "unsupported manifest format: Docker image manifest schema 1 is deprecated and not supported".into(),
            ));
        }
        let kind = match content_type {
            DOCKER_LIST | OCI_INDEX | DOCKER_MANIFEST | OCI_MANIFEST => content_type.to_string(),
            _ => raw.media_type.clone().unwrap_or_else(|| {
                if raw.manifests.is_some() {
                    OCI_INDEX.to_string()
                } else {
                    OCI_MANIFEST.to_string()
                }
            }),
        };
        match kind.as_str() {
            DOCKER_LIST | OCI_INDEX => Ok(Manifest::Index(raw.manifests.unwrap_or_default())),
            DOCKER_MANIFEST | OCI_MANIFEST => {
                let config = raw
                    .config
                    .ok_or_else(|| Error::InvalidManifest("manifest has no config".into()))?;
                Ok(Manifest::Image(ImageManifest {
                    config,
                    layers: raw.layers.unwrap_or_default(),
                }))
            }
            other => Err(Error::InvalidManifest(format!(
                "unsupported manifest media type {other:?}"
            ))),
        }
    }
}

impl Platform {
    /// Parses `os[/arch[/variant]]` as `--platform` takes it; arch aliases normalised
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::Invalid(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            )));
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
                return Err(Error::Invalid(format!(
                    "\"{s}\": unknown operating system or architecture: invalid argument"
                )));
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
        let (arch, variant) = berth_image::config::host_platform();
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

/// Picks the manifest for `want` from an index: exact variant first, then any variant;
/// attestation manifests (`unknown/unknown`) never match.
pub fn select_platform<'a>(entries: &'a [Descriptor], want: &Platform) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = entries
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .collect();
    let exact = candidates.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.variant.as_deref().unwrap_or("") == want.variant.as_deref().unwrap_or("")
        })
    });
    exact
        .or(candidates.first())
        .copied()
        .ok_or_else(|| Error::NoMatchingPlatform(want.to_string()))
}

/// Whether a layer media type is one we can unpack (compression is sniffed when unpacking).
pub fn check_layer_type(d: &Descriptor) -> Result<()> {
    if d.media_type.contains("foreign") || d.urls.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::InvalidManifest(format!(
            "layer {} is a foreign (non-distributable) layer, which berth cannot pull",
            d.digest
        )));
    }
    if d.media_type.contains("encrypted") {
        return Err(Error::InvalidManifest(format!(
            "layer {} is encrypted ({})",
            d.digest, d.media_type
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Digest::sha256_of(&[n]),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: if arch == "unknown" {
                    "unknown"
                } else {
                    "linux"
                }
                .into(),
                variant: variant.map(str::to_string),
            }),
            urls: None,
        }
    }

    #[test]
    fn picks_amd64_and_variants() {
        let idx = vec![
            desc("unknown", None, 0),
            desc("arm", Some("v6"), 1),
            desc("arm", Some("v7"), 2),
            desc("amd64", None, 3),
            desc("arm64", Some("v8"), 4),
        ];
        let host = Platform::parse("linux/amd64").unwrap();
        assert_eq!(select_platform(&idx, &host).unwrap().digest, idx[3].digest);
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(select_platform(&idx, &v7).unwrap().digest, idx[2].digest);
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(select_platform(&idx, &arm64).unwrap().digest, idx[4].digest);
        let err = select_platform(&idx, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(Platform::parse("linux//x").is_err());
        // One word: a known OS or a known architecture, as containerd's platforms.Parse.
        assert_eq!(
            Platform::parse("bogus").unwrap_err().to_string(),
            "\"bogus\": unknown operating system or architecture: invalid argument"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
    }

    #[test]
    fn parses_both_kinds() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":2,"digest":"{}"}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":3,"digest":"{}"}}]}}"#,
            Digest::sha256_of(b"c"),
            Digest::sha256_of(b"l")
        );
        match Manifest::parse(m.as_bytes(), "application/json").unwrap() {
            Manifest::Image(i) => assert_eq!(i.layers.len(), 1),
            _ => panic!("not an image manifest"),
        }
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","size":2,"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            Digest::sha256_of(b"m")
        );
        assert!(matches!(
            Manifest::parse(i.as_bytes(), OCI_INDEX).unwrap(),
            Manifest::Index(v) if v.len() == 1
        ));
        assert!(Manifest::parse(br#"{"schemaVersion":1}"#, "").is_err());
    }
}
