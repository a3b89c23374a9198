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

/// Docker's `since`/`until`: unix seconds, fractional, or an RFC 3339 time.
fn event_time(q: &crate::query::Query, key: &str) -> Result<Option<f64>, crate::error::Error> {
    let Some(v) = q.string(key) else {
        return Ok(None);
    };
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(Some(secs));
    }
    Err(crate::error::Error(berth_api_types::ApiError::invalid(
        format!("invalid value for {key}: {v:?}"),
    )))
}

pub async fn events(
    State(b): State<AppState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> HandlerResult<Response> {
    let q = crate::query::Query::parse(q.as_deref());
    let opts = crate::backend::EventsOptions {
        since: event_time(&q, "since")?,
        until: event_time(&q, "until")?,
        filters: q.filters()?,
    };
    if let Some(until) = opts.until {
        if until < opts.since.unwrap_or(0.0) {
            return Err(crate::error::Error(berth_api_types::ApiError::invalid(
                format!(
                    "`since` time ({}) cannot be after `until` time ({})",
                    q.get("since").unwrap_or_default(),
                    q.get("until").unwrap_or_default()
                ),
            )));
        }
    }
    let stream = b.events(opts).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
