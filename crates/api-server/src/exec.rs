use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::exec::{CreateRequest, StartRequest};
use berth_api_types::IdResponse;
use bytes::Bytes;

use crate::backend::ExecStarted;
use crate::compat::{Behaviour, Change};
use crate::containers::size_params;
use crate::error::{json_body, HandlerResult};
use crate::hijack::{collect, hijack, take_upgrade};
use crate::query::Query;
use crate::AppState;

pub async fn create(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    body: Bytes,
) -> HandlerResult<Response> {
    let mut req: CreateRequest = json_body(&body, "No exec command specified")?;
    if !be.has(Change::ExecConsoleSize) {
        req.console_size = None;
    }
    let exec_id = b.exec_create(&id, req).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id: exec_id })).into_response())
}

pub async fn start(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    req: Request,
) -> HandlerResult<Response> {
    let (up, wants, body) = take_upgrade(req);
    let raw = collect(body).await?;
    let mut start: StartRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        StartRequest::default()
    } else {
        json_body(&raw, "")?
    };
    if !be.has(Change::ExecConsoleSize) {
        start.console_size = None;
    }
    match b.exec_start(&id, start).await? {
        ExecStarted::Detached => Ok(StatusCode::OK.into_response()),
        ExecStarted::Attached(session) => {
            Ok(hijack(up, wants, axum::body::Body::empty(), session, be))
        }
    }
}

pub async fn resize(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let (h, w) = size_params(&q)?;
    b.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

pub async fn inspect(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> HandlerResult<impl IntoResponse> {
    Ok(Json(b.exec_inspect(&id).await?))
}
