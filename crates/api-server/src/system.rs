//! `/_ping`, `/version`, `/info`, `/events`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::backend::EventFormat;
use crate::compat::{shape, Behaviour, Change};
use crate::error::HandlerResult;
use crate::version::Versions;
use crate::AppState;

pub async fn ping(method: Method) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("Builder-Version", HeaderValue::from_static("1"));
    headers.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert("Pragma", HeaderValue::from_static("no-cache"));
    // Unversioned since API 1.42: the node's swarm state; berth is never in a swarm.
    headers.insert("Swarm", HeaderValue::from_static("inactive"));
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

/// The daemon's versions with the API range this server serves (`DOCKER_MIN_API_VERSION`).
pub async fn version(
    State(b): State<AppState>,
    versions: Versions,
) -> HandlerResult<impl IntoResponse> {
    let mut v = b.version().await?;
    v.api_version = versions.max.to_string();
    v.min_api_version = versions.min.to_string();
    for c in v.components.iter_mut().filter(|c| c.name == "Engine") {
        c.details
            .insert("ApiVersion".to_string(), v.api_version.clone());
        c.details
            .insert("MinAPIVersion".to_string(), v.min_api_version.clone());
    }
    Ok(Json(v))
}

pub async fn info(State(b): State<AppState>, be: Behaviour) -> HandlerResult<impl IntoResponse> {
    let info = b.info().await?;
    let mut v = serde_json::to_value(info)
        .map_err(|e| crate::error::Error(berth_api_types::ApiError::internal(e.to_string())))?;
    shape::info(&mut v, be);
    Ok(Json(v))
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

const NDJSON: &str = "application/x-ndjson";
const JSON_SEQ: &str = "application/json-seq";
const JSON_LINES: &str = "application/jsonl";

/// The Content-Type of an event stream, negotiated from `Accept` as dockerd does (Go's
/// `NegotiateContentType`): the best-quality offer, exact matches before `type/*` before `*/*`,
/// earlier offers first; `application/json` when nothing matches or negotiation is not offered.
/// The body is newline-delimited JSON whatever the type, as dockerd 29 writes it.
pub fn events_content_type(accept: Option<&str>, b: Behaviour) -> &'static str {
    if !b.has(Change::EventsContentNegotiation) {
        return "application/json";
    }
    let mut offers = vec![NDJSON, JSON_SEQ];
    if b.has(Change::EventsJsonLines) {
        offers.push(JSON_LINES);
    }
    let specs: Vec<(String, f64)> = accept
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let value = it.next()?.trim().to_ascii_lowercase();
            if value.is_empty() {
                return None;
            }
            let mut q = 1.0;
            for p in it {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            Some((value, q))
        })
        .collect();
    let mut best = "application/json";
    let mut best_q = -1.0;
    let mut best_wild = 3;
    for offer in offers {
        for (value, q) in &specs {
            let (wild, matches) = if *q == 0.0 || *q < best_q {
                (3, false)
            } else if value == "*/*" {
                (2, true)
            } else if let Some(prefix) = value.strip_suffix("/*") {
                (1, offer.starts_with(&format!("{prefix}/")))
            } else {
                (0, value == offer)
            };
            if matches && (*q > best_q || best_wild > wild) {
                best_q = *q;
                best_wild = wild;
                best = offer;
            }
        }
    }
    best
}

pub async fn events(
    State(b): State<AppState>,
    be: Behaviour,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> HandlerResult<Response> {
    let q = crate::query::Query::parse(q.as_deref());
    let opts = crate::backend::EventsOptions {
        since: event_time(&q, "since")?,
        until: event_time(&q, "until")?,
        filters: q.filters()?,
        format: EventFormat {
            legacy_fields: !be.has(Change::EventsLegacyFieldsRemoved),
            image_create: be.has(Change::EventsImageCreate),
        },
    };
    let ctype = events_content_type(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        be,
    );
    let stream = b.events(opts).await?;
    Ok((
        [(header::CONTENT_TYPE, ctype)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::ApiVersion;

    fn at(s: &str) -> Behaviour {
        Behaviour::new(ApiVersion::parse(s).unwrap())
    }

    #[test]
    fn event_stream_types() {
        let new = at("1.55");
        assert_eq!(events_content_type(None, new), "application/json");
        assert_eq!(events_content_type(Some("*/*"), new), NDJSON);
        assert_eq!(
            events_content_type(Some("application/json-seq"), new),
            JSON_SEQ
        );
        assert_eq!(
            events_content_type(Some("application/jsonl"), new),
            JSON_LINES
        );
        assert_eq!(
            events_content_type(Some("application/jsonl"), at("1.52")),
            "application/json"
        );
        assert_eq!(
            events_content_type(
                Some("application/json-seq;q=0.5, application/x-ndjson;q=0.9"),
                new
            ),
            NDJSON
        );
        assert_eq!(
            events_content_type(Some("application/*"), new),
            NDJSON,
            "a wildcard takes the first offer"
        );
        assert_eq!(
            events_content_type(Some("text/html"), new),
            "application/json"
        );
        assert_eq!(
            events_content_type(Some("application/x-ndjson"), at("1.51")),
            "application/json"
        );
    }
}
