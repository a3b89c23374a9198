//! `/networks` routes.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::network::{ConnectRequest, CreateRequest, DisconnectRequest};

use crate::compat::{Behaviour, Change};
use crate::error::{json_body, HandlerResult};
use crate::query::Query;
use crate::AppState;

pub async fn list(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let with_members = !be.has(Change::NetworkListSummaries);
    Ok(Json(b.network_list(q.filters()?, with_members).await?))
}

pub async fn inspect(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> HandlerResult<impl IntoResponse> {
    Ok(Json(b.network_inspect(&id).await?))
}

pub async fn create(
    State(b): State<AppState>,
    be: Behaviour,
    body: Bytes,
) -> HandlerResult<Response> {
    let mut req: CreateRequest = json_body(&body, "network name cannot be empty")?;
    if !be.has(Change::NetworkEnableIpv4) {
        req.enable_ipv4 = None;
    }
    let resp = b.network_create(req).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

pub async fn remove(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> HandlerResult<StatusCode> {
    b.network_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn connect(
    State(b): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> HandlerResult<StatusCode> {
    let req: ConnectRequest = json_body(&body, "container is required")?;
    b.network_connect(&id, req).await?;
    Ok(StatusCode::OK)
}

pub async fn disconnect(
    State(b): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> HandlerResult<StatusCode> {
    let req: DisconnectRequest = json_body(&body, "container is required")?;
    b.network_disconnect(&id, req).await?;
    Ok(StatusCode::OK)
}

pub async fn prune(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    Ok(Json(b.network_prune(q.filters()?).await?))
}
