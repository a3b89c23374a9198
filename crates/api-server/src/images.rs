use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::{ApiError, ErrorKind};

use crate::backend::{ByteStream, ImageListOptions, ImportOptions, LoadOptions, PlatformSpec};
use crate::compat::{shape, Behaviour, Change};
use crate::containers::to_value;
use crate::error::{Error, HandlerResult};
use crate::query::Query;
use crate::AppState;

pub(crate) fn json_stream(stream: ByteStream) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn tar_stream(stream: ByteStream) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response()
}

pub async fn list(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let mut filters = q.filters()?;
    // Old clients sent the reference as `filter=`.
    if !be.has(Change::ImageListFilterParamRemoved)
        && !filters.iter().any(|(k, _)| k == "reference")
    {
        if let Some(f) = q.string("filter") {
            filters.push(("reference".to_string(), vec![f]));
        }
    }
    let list = b
        .image_list(ImageListOptions {
            all: q.bool("all")?,
            filters,
        })
        .await?;
    let mut v = to_value(&list)?;
    shape::image_summaries(&mut v, be);
    Ok(Json(v))
}

/// dockerd's `DecodePlatform`: a JSON OCI platform with both `os` and `architecture`.
pub fn decode_platform(raw: &str) -> Result<PlatformSpec, Error> {
    /// The OCI `v1.Platform` JSON.
    #[derive(serde::Deserialize)]
    #[serde(rename = "v1.Platform")]
    struct Platform {
        os: String,
        architecture: String,
        variant: String,
        #[serde(rename = "os.version")]
        os_version: String,
        #[serde(rename = "os.features")]
        os_features: Vec<String>,
    }
    let v: Platform = berth_api_types::gojson::from_str(raw)
        .map_err(|e| Error(ApiError::invalid(format!("failed to parse platform: {e}"))))?;
    let p = PlatformSpec {
        os: v.os,
        architecture: v.architecture,
        variant: v.variant,
    };
    let optional = !p.variant.is_empty() || !v.os_version.is_empty() || !v.os_features.is_empty();
    if p.os.is_empty() && p.architecture.is_empty() && optional {
        return Err(Error(ApiError::invalid(
            "optional platform fields provided, but OS and Architecture are missing",
        )));
    }
    if p.os.is_empty() || p.architecture.is_empty() {
        return Err(Error(ApiError::invalid(
            "both OS and Architecture must be provided",
        )));
    }
    Ok(p)
}

/// The `platform` values of save and load: from API 1.48, several from 1.52.
fn save_load_platforms(q: &Query, be: Behaviour) -> Result<Vec<PlatformSpec>, Error> {
    if !be.has(Change::ImageSaveLoadPlatform) {
        return Ok(Vec::new());
    }
    let raw: Vec<String> = q
        .all("platform")
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    if raw.len() > 1 && !be.has(Change::ImageSaveLoadPlatforms) {
        return Err(Error(ApiError::invalid(
            "multiple platform parameters are not supported in this API version; use API version 1.52 or later",
        )));
    }
    raw.iter().map(|p| decode_platform(p)).collect()
}

pub async fn load(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
    req: Request,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let opts = LoadOptions {
        quiet: q.bool("quiet")?,
        platforms: save_load_platforms(&q, be)?,
    };
    let body = crate::drain::body_stream(req);
    Ok(json_stream(b.image_load(body, opts).await?))
}

pub async fn save_many(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let names = q.all("names");
    if names.is_empty() {
        return Err(Error(ApiError::invalid("no image names given")));
    }
    let platforms = save_load_platforms(&q, be)?;
    Ok(tar_stream(b.image_save(names, platforms).await?))
}

/// `POST /images/create`: `fromSrc` imports a rootfs tarball; `fromImage` pulls (a later issue).
pub async fn create(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    req: Request,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    if let Some(src) = q.string("fromSrc") {
        if src != "-" {
            return Err(Error(ApiError::new(
                ErrorKind::NotImplemented,
                "importing from a URL is not supported; pipe the tarball on stdin (fromSrc=-)",
            )));
        }
        let opts = ImportOptions {
            repo: q.string("repo").unwrap_or_default(),
            tag: q.string("tag").unwrap_or_default(),
            message: q.string("message").unwrap_or_default(),
            changes: q.all("changes"),
        };
        let body = crate::drain::body_stream(req);
        return Ok(json_stream(b.image_import(body, opts).await?));
    }
    if let Some(image) = q.string("fromImage") {
        return crate::registry::pull(b, be, &q, &headers, image).await;
    }
    Err(Error(ApiError::invalid(
        "either fromSrc or fromImage must be given",
    )))
}

/// Whether image `img` (inspect JSON) is of `wanted`; a wanted variant must match, an image
/// that does not say its architecture matches anything.
fn platform_matches(img: &serde_json::Value, wanted: &PlatformSpec) -> bool {
    let field = |k: &str| img.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let arch = field("Architecture");
    if arch.is_empty() {
        return true;
    }
    let os = match field("Os") {
        "" => "linux",
        os => os,
    };
    os == wanted.os
        && arch == wanted.architecture
        && (wanted.variant.is_empty() || wanted.variant == field("Variant"))
}

fn image_platform(img: &serde_json::Value) -> String {
    let field = |k: &str| img.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let p = PlatformSpec {
        os: field("Os").to_string(),
        architecture: field("Architecture").to_string(),
        variant: field("Variant").to_string(),
    };
    p.to_string()
}

/// The image `name` as inspect shows it, refused with dockerd's 404 when `wanted` (a
/// `platform` query parameter) names another platform.
async fn image_of_platform(
    b: &AppState,
    name: &str,
    wanted: Option<&PlatformSpec>,
) -> Result<serde_json::Value, Error> {
    let img = to_value(&b.image_inspect(name).await?)?;
    if let Some(w) = wanted {
        if !platform_matches(&img, w) {
            return Err(Error(ApiError::not_found(format!(
                "image with reference {name} was found but does not match the specified platform: wanted {w}, actual: {}",
                image_platform(&img)
            ))));
        }
    }
    Ok(img)
}

/// `GET /images/{name}/attestations` (API 1.55, served at every version): berth keeps no
/// attestation manifests, so an image it has has none.
async fn attestations(b: &AppState, name: &str, q: &Query) -> Result<Response, Error> {
    let platforms: Vec<String> = q.all("platform");
    if platforms.len() > 1 {
        return Err(Error(ApiError::invalid(
            "only one platform value is currently supported",
        )));
    }
    let wanted = match platforms.first().filter(|p| !p.is_empty()) {
        Some(p) => Some(decode_platform(p)?),
        None => None,
    };
    image_of_platform(b, name, wanted.as_ref()).await?;
    Ok(Json(serde_json::json!([])).into_response())
}

/// `/images/{name}/json|history|get|attestations` where the name itself may contain slashes.
pub async fn get_dispatch(
    State(b): State<AppState>,
    be: Behaviour,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    if let Some(name) = rest.strip_suffix("/json") {
        let wanted = match q.string("platform") {
            Some(p) if be.has(Change::ImageInspectPlatform) => Some(decode_platform(&p)?),
            _ => None,
        };
        let mut v = image_of_platform(&b, name, wanted.as_ref()).await?;
        shape::image_inspect(&mut v, be);
        return Ok(Json(v).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        if be.has(Change::ImageHistoryPlatform) {
            if let Some(p) = q.string("platform") {
                image_of_platform(&b, name, Some(&decode_platform(&p)?)).await?;
            }
        }
        return Ok(Json(b.image_history(name).await?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        let platforms = save_load_platforms(&q, be)?;
        return Ok(tar_stream(
            b.image_save(vec![name.to_string()], platforms).await?,
        ));
    }
    if let Some(name) = rest.strip_suffix("/attestations") {
        return attestations(&b, name, &q).await;
    }
    Err(Error(ApiError::not_found("page not found")))
}

pub async fn post_dispatch(
    State(b): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = q
            .string("repo")
            .ok_or_else(|| Error(ApiError::invalid("repository name must be given")))?;
        b.image_tag(name, &repo, &q.string("tag").unwrap_or_default())
            .await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return crate::registry::push(b, &q, &headers, name).await;
    }
    Err(Error(ApiError::not_found("page not found")))
}

pub async fn remove(
    State(b): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    Ok(Json(
        b.image_remove(&name, q.bool("force")?, q.bool("noprune")?)
            .await?,
    )
    .into_response())
}
