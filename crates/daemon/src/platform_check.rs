//! `POST /containers/create?platform=`: a local image of another platform is not used.
//! Docker 28 answers 404 (the CLI then pulls the image for that platform, and create again).
//! Also the `platform` selection of image save and load.

use berth_api_types::ApiError;
use berth_image::config::ImageConfig;
use berth_registry::Platform;
use berth_services::PlatformSpec;

/// Checks that the image `reference` (with config `config`) is of the platform `wanted`
/// (`os[/arch[/variant]]`). Images that do not say their architecture are accepted.
pub(crate) fn check(reference: &str, wanted: &str, config: &ImageConfig) -> Result<(), ApiError> {
    let want = Platform::parse(wanted).map_err(|e| ApiError::invalid(e.to_string()))?;
    if config.architecture.is_empty() {
        return Ok(());
    }
    let have = Platform {
        architecture: config.architecture.clone(),
        os: if config.os.is_empty() {
            "linux".into()
        } else {
            config.os.clone()
        },
        variant: config.variant.clone().filter(|v| !v.is_empty()),
    };
    if want.matches(&have) {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "image with reference {reference} was found but its platform ({have}) does not match the specified platform ({want})"
    )))
}

/// The platform an image config says it is of (`None` when it names no architecture).
fn platform_of(config: &ImageConfig) -> Option<Platform> {
    if config.architecture.is_empty() {
        return None;
    }
    Some(Platform {
        architecture: config.architecture.clone(),
        os: if config.os.is_empty() {
            "linux".into()
        } else {
            config.os.clone()
        },
        variant: config.variant.clone().filter(|v| !v.is_empty()),
    })
}

/// Whether an image with `config` is of one of `wanted` (any image when `wanted` is empty);
/// otherwise dockerd's 404, naming `reference`.
pub(crate) fn check_any(
    reference: &str,
    wanted: &[PlatformSpec],
    config: &ImageConfig,
) -> Result<(), ApiError> {
    let Some(have) = platform_of(config) else {
        return Ok(());
    };
    let matches = |w: &PlatformSpec| {
        Platform {
            architecture: w.architecture.clone(),
            os: w.os.clone(),
            variant: Some(w.variant.clone()).filter(|v| !v.is_empty()),
        }
        .matches(&have)
    };
    if wanted.is_empty() || wanted.iter().any(matches) {
        return Ok(());
    }
    let wanted: Vec<String> = wanted.iter().map(ToString::to_string).collect();
    Err(ApiError::not_found(format!(
        "image with reference {reference} was found but does not match the specified platform: wanted {}, actual: {have}",
        wanted.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(arch: &str, variant: Option<&str>) -> ImageConfig {
        ImageConfig {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn another_platform_is_not_found() {
        let e = check("busybox", "linux/arm64", &cfg("amd64", None)).unwrap_err();
        assert_eq!(e.kind, berth_api_types::ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "image with reference busybox was found but its platform (linux/amd64) does not match the specified platform (linux/arm64)"
        );
        assert!(check("busybox", "linux/amd64", &cfg("amd64", None)).is_ok());
        assert!(check("busybox", "amd64", &cfg("amd64", None)).is_ok());
        assert!(check("busybox", "linux/arm64/v8", &cfg("arm64", Some("v8"))).is_ok());
        assert!(check("busybox", "linux/arm64", &cfg("arm64", None)).is_ok());
        assert!(check("busybox", "linux/arm/v6", &cfg("arm", Some("v7"))).is_err());
        assert!(check("x", "linux/arm64", &ImageConfig::default()).is_ok());
        let e = check("busybox", "linux//", &cfg("amd64", None)).unwrap_err();
        assert_eq!(e.kind, berth_api_types::ErrorKind::InvalidParameter);
    }

    #[test]
    fn save_and_load_platforms() {
        let spec = |os: &str, arch: &str, variant: &str| PlatformSpec {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
        };
        let amd64 = cfg("amd64", None);
        assert!(check_any("busybox", &[], &amd64).is_ok());
        assert!(check_any("busybox", &[spec("linux", "amd64", "")], &amd64).is_ok());
        assert!(check_any(
            "busybox",
            &[spec("linux", "arm64", ""), spec("linux", "amd64", "")],
            &amd64
        )
        .is_ok());
        let e = check_any(
            "busybox",
            &[spec("linux", "arm64", ""), spec("linux", "s390x", "")],
            &amd64,
        )
        .unwrap_err();
        assert_eq!(e.kind, berth_api_types::ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "image with reference busybox was found but does not match the specified platform: wanted linux/arm64, linux/s390x, actual: linux/amd64"
        );
        assert!(check_any("x", &[spec("linux", "arm64", "")], &ImageConfig::default()).is_ok());
    }
}
