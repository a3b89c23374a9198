//! What every request and response goes through around the router, so that nothing reaches a
//! client in a shape dockerd would not send:
//! - a path whose percent-escapes are not UTF-8 is decoded lossily, as Go does (U+FFFD for
//!   each bad sequence), instead of failing in the path extractor: `GET /containers/%ff/json`
//!   is a 404 for a container named "\u{fffd}", as with dockerd;
//! - an error answered in plain text (axum's rejections: a body that could not be read, a
//!   path or query that does not parse) becomes `{"message": ...}` like every other error.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use berth_api_types::ErrorResponse;

pub async fn lossy_path(mut req: Request, next: Next) -> Response {
    if let Some(uri) = lossy_uri(req.uri()) {
        *req.uri_mut() = uri;
    }
    next.run(req).await
}

pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let json = serde_json::to_vec(&ErrorResponse { message }).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                // Two hex digits: at most 0xff.
                out.push(u8::try_from(h * 16 + l).unwrap_or(u8::MAX));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// `uri` with every path segment whose escapes are not UTF-8 replaced by its lossy decoding,
/// re-escaped; `None` when the path is fine as it is.
fn lossy_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if std::str::from_utf8(&percent_decode(path)).is_ok() {
        return None;
    }
    let fixed: Vec<String> = path
        .split('/')
        .map(|seg| {
            let raw = percent_decode(seg);
            match std::str::from_utf8(&raw) {
                Ok(_) => seg.to_string(),
                Err(_) => percent_encode(&String::from_utf8_lossy(&raw)),
            }
        })
        .collect();
    let mut pq = fixed.join("/");
    if let Some(q) = uri.query() {
        pq.push('?');
        pq.push_str(q);
    }
    pq.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_utf8_in_a_path_is_decoded_lossily() {
        let u: Uri = "/v1.41/containers/a%ffb/json?x=%ff".parse().unwrap();
        let fixed = lossy_uri(&u).unwrap();
        assert_eq!(fixed.path(), "/v1.41/containers/a%EF%BF%BDb/json");
        assert_eq!(fixed.query(), Some("x=%ff"));
        assert_eq!(
            String::from_utf8(percent_decode(fixed.path())).unwrap(),
            "/v1.41/containers/a\u{fffd}b/json"
        );
        let fine: Uri = "/containers/caf%C3%A9/json".parse().unwrap();
        assert!(lossy_uri(&fine).is_none());
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("a%41"), b"aA");
    }
}
