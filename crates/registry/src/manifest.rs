//! Image manifests and indexes (Docker schema 2 and OCI), and platform selection.

use serde::Deserialize;

use crate::error::{Error, Result};

pub use berth_image::oci::media_types::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST as DOCKER_LIST,
    OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
pub use berth_image::oci::{Descriptor, Platform};

/// What a pull accepts, best first.
pub const ACCEPT_MANIFESTS: [&str; 4] = [OCI_INDEX, DOCKER_LIST, DOCKER_MANIFEST, OCI_MANIFEST];

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
    use berth_image::Digest;

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
            annotations: None,
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
