use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::{ApiError, ErrorKind};
use futures_util::TryStreamExt;

use crate::backend::{ByteStream, ImageListOptions, ImportOptions};
use crate::error::{Error, HandlerResult};
use crate::query::Query;
use crate::AppState;

fn body_stream(req: Request) -> ByteStream {
    Box::pin(
        req.into_body()
            .into_data_stream()
            .map_err(std::io::Error::other),
    )
}

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
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let mut filters = q.filters()?;
    // API < 1.41 sent the reference as `filter=`.
    if let Some(f) = q.string("filter") {
        filters.push(("reference".to_string(), vec![f]));
    }
    Ok(Json(
        b.image_list(ImageListOptions {
            all: q.bool("all")?,
            filters,
        })
        .await?,
    ))
}

pub async fn load(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
    req: Request,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let quiet = q.bool("quiet")?;
    Ok(json_stream(b.image_load(body_stream(req), quiet).await?))
}

pub async fn save_many(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let names = q.all("names");
    if names.is_empty() {
        return Err(Error(ApiError::invalid("no image names given")));
    }
    Ok(tar_stream(b.image_save(names).await?))
}

/// `POST /images/create`: `fromSrc` imports a rootfs tarball; `fromImage` pulls (a later issue).
pub async fn create(
    State(b): State<AppState>,
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
        return Ok(json_stream(b.image_import(body_stream(req), opts).await?));
    }
    if let Some(image) = q.string("fromImage") {
        return crate::registry::pull(b, &q, &headers, image).await;
    }
    Err(Error(ApiError::invalid(
        "either fromSrc or fromImage must be given",
    )))
}

/// `/images/{name}/json|history|get` where the name itself may contain slashes.
pub async fn get_dispatch(
    State(b): State<AppState>,
    Path(rest): Path<String>,
) -> HandlerResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return Ok(Json(b.image_inspect(name).await?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return Ok(Json(b.image_history(name).await?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return Ok(tar_stream(b.image_save(vec![name.to_string()]).await?));
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
