//! API versions: the `/vX.Y` prefix of a request, the range served (lowered or raised with
//! `DOCKER_MIN_API_VERSION`, as dockerd does), the headers every response carries, and the version
//! each request is served at, which handlers read as an [`ApiVersion`] extractor and turn into
//! behaviour through [`crate::compat`].

use std::fmt;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_api_types::{ApiError, API_VERSION, MIN_API_VERSION};

use crate::error::Error;

/// An Engine API version, `major.minor`, ordered as dockerd compares them (numerically by part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> ApiVersion {
        ApiVersion { major, minor }
    }

    /// The lowest version berth serves (`MIN_API_VERSION`).
    pub fn lowest() -> ApiVersion {
        Self::parse(MIN_API_VERSION).unwrap_or(ApiVersion::new(1, 24))
    }

    /// The highest version berth serves, also the version of unversioned requests (`API_VERSION`).
    pub fn highest() -> ApiVersion {
        Self::parse(API_VERSION).unwrap_or(ApiVersion::new(1, 55))
    }

    /// `1.41` (a third part, as in `1.41.0`, is accepted and ignored). `None` unless every part
    /// is a number, as dockerd's route only takes `[0-9.]+` as a version.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let mut parts = s.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        for rest in parts {
            rest.parse::<u32>().ok()?;
        }
        Some(ApiVersion { major, minor })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The range of versions a daemon serves: `max` is also the default (unversioned paths) and the
/// `Api-Version` header; `min` is [`ApiVersion::lowest`] unless `DOCKER_MIN_API_VERSION` says
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: ApiVersion,
    pub max: ApiVersion,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            min: ApiVersion::lowest(),
            max: ApiVersion::highest(),
        }
    }
}

impl Versions {
    /// The range with the minimum from `DOCKER_MIN_API_VERSION` when it is set and not empty;
    /// an invalid value is an error with dockerd's message, which stops the daemon.
    pub fn from_env() -> Result<Versions, String> {
        match std::env::var("DOCKER_MIN_API_VERSION") {
            Ok(v) if !v.is_empty() => {
                Self::with_min(&v).map_err(|e| format!("invalid DOCKER_MIN_API_VERSION: {e}"))
            }
            _ => Ok(Versions::default()),
        }
    }

    /// The default range with minimum `min`, validated as dockerd's `ValidateMinAPIVersion`:
    /// no `v` prefix, and within the versions the daemon can serve.
    pub fn with_min(min: &str) -> Result<Versions, String> {
        let d = Versions::default();
        if min.is_empty() {
            return Err("value is empty".to_string());
        }
        if min.starts_with(['v', 'V']) {
            return Err(r#"API version must be provided without "v" prefix"#.to_string());
        }
        // dockerd compares unparsable parts as 0, so garbage is "too old".
        let v = ApiVersion::parse(min).unwrap_or(ApiVersion::new(0, 0));
        if v < d.min {
            return Err(format!("minimum supported API version is {}: {min}", d.min));
        }
        if v > d.max {
            return Err(format!("maximum supported API version is {}: {min}", d.max));
        }
        Ok(Versions { min: v, max: d.max })
    }
}

/// `router` behind the version handling, as one service for a connection.
pub fn app(router: Router, versions: Versions) -> Router {
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn(move |req, next| {
            rewrite(versions, req, next)
        }))
}

/// Splits `/v1.41/containers/json` into (`Some("1.41")`, `/containers/json`).
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(idx) = rest.find('/') {
            let v = &rest[..idx];
            if ApiVersion::parse(v).is_some() {
                return (Some(v), &rest[idx..]);
            }
        }
    }
    (None, path)
}

/// Checks `raw` (the path's version, `None` for an unversioned path) against `versions`, with
/// dockerd's messages; unversioned requests are served at the default (highest) version.
pub fn negotiate(raw: Option<&str>, versions: Versions) -> Result<ApiVersion, ApiError> {
    let Some(raw) = raw else {
        return Ok(versions.max);
    };
    let v = ApiVersion::parse(raw).unwrap_or(ApiVersion::new(0, 0));
    if v < versions.min {
        return Err(ApiError::invalid(format!(
            "client version {raw} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            versions.min
        )));
    }
    if v > versions.max {
        return Err(ApiError::invalid(format!(
            "client version {raw} is too new. Maximum supported API version is {}",
            versions.max
        )));
    }
    Ok(v)
}

async fn rewrite(versions: Versions, req: Request, next: Next) -> Response {
    if !crate::drain::has_body(&req) {
        return route(versions, req, next).await;
    }
    // What the handler leaves of the body is read before the answer ends (drain.rs).
    let (req, slot) = crate::drain::share(req);
    let resp = route(versions, req, next).await;
    slot.after(resp).await
}

async fn route(versions: Versions, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let (raw, rest) = split_version(&path);
    let version = match negotiate(raw, versions) {
        Ok(v) => v,
        Err(e) => return with_headers(Error(e).into_response(), versions),
    };
    if raw.is_some() {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    req.extensions_mut().insert(versions);
    tracing::debug!(method = %req.method(), uri = %redacted(req.uri()), %version, "request");
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // axum's body limit answers in plain text; clients expect Docker's error shape.
        let body = berth_api_types::ErrorResponse {
            message: "request body too large".to_string(),
        };
        return with_headers(
            (axum::http::StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response(),
            versions,
        );
    }
    with_headers(resp, versions)
}

fn with_headers(mut resp: Response, versions: Versions) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&versions.max.to_string()) {
        h.insert("Api-Version", v);
    }
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

/// The version a request is served at (the highest when the version layer did not run, as in
/// tests that call the router directly).
impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or_else(ApiVersion::highest))
    }
}

/// The range served, for `/version`.
impl<S: Send + Sync> FromRequestParts<S> for Versions {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Versions>()
            .copied()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_versions() {
        assert_eq!(split_version("/v1.51/info"), (Some("1.51"), "/info"));
        assert_eq!(split_version("/info"), (None, "/info"));
        assert_eq!(split_version("/volumes/x"), (None, "/volumes/x"));
        assert_eq!(split_version("/vx.1/info"), (None, "/vx.1/info"));
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| ApiVersion::parse(s).unwrap();
        assert!(v("1.9") < v("1.24"));
        assert!(v("1.41") < v("1.42"));
        assert!(v("2.0") > v("1.55"));
        assert_eq!(v("1.41.0"), v("1.41"));
        assert_eq!(v("1.41").to_string(), "1.41");
        assert!(ApiVersion::parse("1.4a").is_none());
        assert!(ApiVersion::parse("").is_none());
    }

    #[test]
    fn served_range_and_defaults() {
        let d = Versions::default();
        assert_eq!(d.min.to_string(), "1.24");
        assert_eq!(d.max.to_string(), "1.55");
        assert_eq!(negotiate(None, d).unwrap(), d.max);
        assert_eq!(negotiate(Some("1.41"), d).unwrap(), ApiVersion::new(1, 41));
        assert_eq!(
            negotiate(Some("1.12"), d).unwrap_err().message,
            "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
        assert_eq!(
            negotiate(Some("1.99"), d).unwrap_err().message,
            "client version 1.99 is too new. Maximum supported API version is 1.55"
        );
    }

    #[test]
    fn minimum_from_the_environment_value() {
        let v = Versions::with_min("1.44").unwrap();
        assert_eq!(v.min, ApiVersion::new(1, 44));
        assert!(negotiate(Some("1.43"), v)
            .unwrap_err()
            .message
            .contains("Minimum supported API version is 1.44"));
        assert_eq!(
            Versions::with_min("v1.44").unwrap_err(),
            r#"API version must be provided without "v" prefix"#
        );
        assert_eq!(
            Versions::with_min("1.12").unwrap_err(),
            "minimum supported API version is 1.24: 1.12"
        );
        assert_eq!(
            Versions::with_min("1.99").unwrap_err(),
            "maximum supported API version is 1.55: 1.99"
        );
        assert_eq!(
            Versions::with_min("abc").unwrap_err(),
            "minimum supported API version is 1.24: abc"
        );
        assert_eq!(Versions::with_min("1.24").unwrap(), Versions::default());
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
