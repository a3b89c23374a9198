use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::HandlerResult;
use crate::AppState;

pub async fn ping(method: Method) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("Builder-Version", HeaderValue::from_static("1"));
    headers.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert("Pragma", HeaderValue::from_static("no-cache"));
    headers.insert(
        "Content-Type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if method == Method::HEAD {
        (headers, "").into_response()
    } else {
        (headers, "OK").into_response()
    }
}

pub async fn version(State(b): State<AppState>) -> HandlerResult<impl IntoResponse> {
    Ok(Json(b.version().await?))
}

pub async fn info(State(b): State<AppState>) -> HandlerResult<impl IntoResponse> {
    Ok(Json(b.info().await?))
}
