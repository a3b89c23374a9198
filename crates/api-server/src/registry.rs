//! Registry routes: pull (`POST /images/create?fromImage=`), push, `POST /auth`, search.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::ApiError;

use crate::backend::{PullOptions, PushOptions};
use crate::compat::{Behaviour, Change};
use crate::error::{Error, HandlerResult};
use crate::images::json_stream;
use crate::query::Query;
use crate::AppState;

fn registry_auth(headers: &HeaderMap) -> Option<String> {
    headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

pub(crate) async fn pull(
    b: AppState,
    be: Behaviour,
    q: &Query,
    headers: &HeaderMap,
    from_image: String,
) -> HandlerResult<Response> {
    let platform = if be.has(Change::ImageCreatePlatform) {
        q.string("platform").unwrap_or_default()
    } else {
        String::new()
    };
    let opts = PullOptions {
        from_image,
        tag: q.string("tag").unwrap_or_default(),
        platform,
        registry_auth: registry_auth(headers),
    };
    Ok(json_stream(b.image_pull(opts).await?))
}

pub(crate) async fn push(
    b: AppState,
    q: &Query,
    headers: &HeaderMap,
    name: &str,
) -> HandlerResult<Response> {
    let opts = PushOptions {
        name: name.to_string(),
        tag: q.string("tag").unwrap_or_default(),
        registry_auth: registry_auth(headers),
    };
    Ok(json_stream(b.image_push(opts).await?))
}

/// `POST /auth` with Docker's `AuthConfig` body.
pub async fn auth(State(b): State<AppState>, body: Bytes) -> HandlerResult<Response> {
    let v: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        berth_api_types::gojson::from_slice(&body).map_err(|e| {
            Error(ApiError::invalid(format!(
                "invalid auth configuration: {e}"
            )))
        })?
    };
    Ok(Json(b.registry_login(v).await?).into_response())
}

/// `GET /images/search?term=&limit=`.
pub async fn search(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let term = q
        .string("term")
        .ok_or_else(|| Error(ApiError::invalid("term is required")))?;
    let limit = q.int("limit")?.map(|l| usize::try_from(l).unwrap_or(0));
    Ok(Json(b.image_search(term, limit, registry_auth(&headers)).await?).into_response())
}
