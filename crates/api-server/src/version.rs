//! `/vX.Y` prefixes and the headers every response carries.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_api_types::{ApiError, API_VERSION, MIN_API_VERSION};

use crate::error::Error;

/// Wraps the router with the version rewrite, which must run before routing.
pub fn wrap(router: Router) -> axum::routing::IntoMakeService<Router> {
    app(router).into_make_service()
}

/// `router` behind the version handling, as one service for a connection.
pub fn app(router: Router) -> Router {
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn(rewrite))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Splits `/v1.41/containers/json` into (`Some("1.41")`, `/containers/json`).
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(idx) = rest.find('/') {
            let v = &rest[..idx];
            if parse_version(v).is_some() {
                return (Some(v), &rest[idx..]);
            }
        }
    }
    (None, path)
}

async fn rewrite(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let (version, rest) = split_version(&path);
    if let Some(v) = version {
        let parsed = parse_version(v);
        if parsed < parse_version(MIN_API_VERSION) {
            return with_headers(
                Error(ApiError::invalid(format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                )))
                .into_response(),
            );
        }
        if parsed > parse_version(API_VERSION) {
            return with_headers(
                Error(ApiError::invalid(format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                )))
                .into_response(),
            );
        }
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    tracing::debug!(method = %req.method(), uri = %redacted(req.uri()), "request");
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // axum's body limit answers in plain text; clients expect Docker's error shape.
        let body = berth_api_types::ErrorResponse {
            message: "request body too large".to_string(),
        };
        return with_headers(
            (axum::http::StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response(),
        );
    }
    with_headers(resp)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::split_version;

    #[test]
    fn splits_versions() {
        assert_eq!(split_version("/v1.51/info"), (Some("1.51"), "/info"));
        assert_eq!(split_version("/info"), (None, "/info"));
        assert_eq!(split_version("/volumes/x"), (None, "/volumes/x"));
    }
}

/// The request URI for the log, with the values of `POST /build`'s `secret=` parameters
/// (build secrets, a berth extension) replaced: secrets never reach the daemon's log.
fn redacted(uri: &Uri) -> String {
    let Some(q) = uri.query() else {
        return uri.to_string();
    };
    let parts: Vec<String> = q
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == "secret" => format!("{k}=<redacted>"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), parts.join("&"))
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn build_secrets_are_not_logged() {
        let uri: Uri = "/v1.51/build?t=x&secret=id%3Da%2Cdata%3DczNjcjN0&q=1"
            .parse()
            .unwrap();
        let shown = redacted(&uri);
        assert_eq!(shown, "/v1.51/build?t=x&secret=<redacted>&q=1");
        assert!(!shown.contains("czNjcjN0"));
    }
}
