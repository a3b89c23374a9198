//! `POST /containers/{id}/update` and `GET /containers/{id}/stats`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;

use crate::backend::{StatsOptions, UpdateOptions};
use crate::compat::{Behaviour, Change};
use crate::error::{json_body, HandlerResult};
use crate::query::Query;
use crate::AppState;

pub async fn update(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    body: Bytes,
) -> HandlerResult<Response> {
    let req: serde_json::Value = json_body(&body, "update config cannot be empty")?;
    let opts = UpdateOptions {
        pids_limit: be.has(Change::UpdatePidsLimit),
        blkio_devices: be.has(Change::UpdateBlkioDevices),
    };
    let warnings = b.container_update(&id, req, opts).await?;
    Ok(Json(serde_json::json!({ "Warnings": warnings })).into_response())
}

pub async fn stats(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let opts = StatsOptions {
        stream: q.bool_or("stream", true)?,
        one_shot: be.has(Change::StatsOneShot) && q.bool("one-shot")?,
        os_type: be.has(Change::StatsOsType),
    };
    let body = b.container_stats(&id, opts).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
