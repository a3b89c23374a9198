//! `POST /containers/{id}/update` and `GET /containers/{id}/stats`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;

use crate::error::{json_body, HandlerResult};
use crate::query::Query;
use crate::AppState;

pub async fn update(
    State(b): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> HandlerResult<Response> {
    let req: serde_json::Value = json_body(&body, "update config cannot be empty")?;
    let warnings = b.container_update(&id, req).await?;
    Ok(Json(serde_json::json!({ "Warnings": warnings })).into_response())
}

pub async fn stats(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let stream = q.bool_or("stream", true)?;
    let one_shot = q.bool("one-shot")?;
    let body = b.container_stats(&id, stream, one_shot).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}
