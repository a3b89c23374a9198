//! `/volumes/*` and the container archive endpoints (`docker cp`).

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use berth_api_types::volume::{CreateRequest, PathStat};
use berth_api_types::ApiError;
use bytes::Bytes;

use crate::compat::{Behaviour, Change};
use crate::error::{json_body, Error, HandlerResult};
use crate::query::Query;
use crate::AppState;

pub async fn create(State(b): State<AppState>, body: Bytes) -> HandlerResult<Response> {
    let req: CreateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRequest::default()
    } else {
        json_body(&body, "")?
    };
    let v = b.volume_create(req).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn list(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    Ok(Json(b.volume_list(q.filters()?).await?))
}

pub async fn inspect(
    State(b): State<AppState>,
    Path(name): Path<String>,
) -> HandlerResult<impl IntoResponse> {
    Ok(Json(b.volume_inspect(&name).await?))
}

pub async fn remove(
    State(b): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.volume_remove(&name, q.bool("force")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Before API 1.42 every unused volume is pruned, named ones too.
pub async fn prune(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let named_too = !be.has(Change::VolumePruneAnonymousOnly);
    Ok(Json(b.volume_prune(q.filters()?, named_too).await?))
}

/// The `X-Docker-Container-Path-Stat` header value: base64 of the stat's JSON.
pub fn stat_header(stat: &PathStat) -> Result<HeaderValue, Error> {
    let json = serde_json::to_vec(stat).map_err(|e| Error(ApiError::internal(e.to_string())))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&encoded).map_err(|e| Error(ApiError::internal(e.to_string())))
}

fn archive_path(q: &Query) -> Result<String, Error> {
    q.string("path")
        .ok_or_else(|| Error(ApiError::invalid("path is required")))
}

pub async fn archive_head(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let path = archive_path(&q)?;
    let stat = b.container_archive_stat(&id, &path).await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat)?);
    Ok(resp)
}

pub async fn archive_get(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let path = archive_path(&q)?;
    let (stat, stream) = b.container_archive_get(&id, &path).await?;
    let mut resp = (
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response();
    resp.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat)?);
    Ok(resp)
}

pub async fn archive_put(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let path = archive_path(&q)?;
    let (body, upload) = crate::upload::upload(req);
    b.container_archive_put(
        &id,
        &path,
        q.bool("noOverwriteDirNonDir")?,
        q.bool("copyUIDGID")?,
        body,
    )
    .await?;
    upload.drain().await;
    Ok(StatusCode::OK)
}

pub async fn containers_prune(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    Ok(Json(b.containers_prune(q.filters()?).await?))
}

pub async fn images_prune(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    Ok(Json(b.images_prune(q.filters()?).await?))
}
