//! Attach and exec start: hijack the connection, or stream over a plain 200 for old clients.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::backend::Session;
use crate::compat::{Behaviour, Change};

/// The Content-Type of an output stream: multiplexed (8-byte frames) without a TTY, said as
/// such from API 1.42; older clients are told `raw-stream` for both.
pub fn content_type(tty: bool, b: Behaviour) -> &'static str {
    if tty || !b.has(Change::MultiplexedStreamContentType) {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Hands the connection to `session`. With `Upgrade: tcp` the answer is `101` and the raw
/// connection carries stdin and output; without it, output streams in a `200` body and stdin is
/// read from the request body.
pub fn hijack(
    on_upgrade: Option<OnUpgrade>,
    wants_upgrade: bool,
    body: Body,
    session: Session,
    b: Behaviour,
) -> Response<Body> {
    let ctype = HeaderValue::from_static(content_type(session.tty, b));
    match on_upgrade {
        Some(on_upgrade) if wants_upgrade => {
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => (session.run)(Box::new(TokioIo::new(upgraded))).await,
                    Err(e) => tracing::warn!("connection upgrade failed: {e}"),
                }
            });
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
            h.insert(header::CONTENT_TYPE, ctype);
            resp
        }
        _ => {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let (rd, mut wr) = tokio::io::split(ours);
            tokio::spawn(async move {
                let mut stream = body.into_data_stream();
                while let Some(Ok(chunk)) = stream.next().await {
                    if wr.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = wr.shutdown().await;
            });
            tokio::spawn((session.run)(Box::new(theirs)));
            let mut resp = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(rd)));
            // Without an upgrade dockerd says raw-stream whatever the framing.
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.docker.raw-stream"),
            );
            resp
        }
    }
}

/// Splits a request for [`hijack`]: the upgrade handle, whether the client asked for it, and the body.
pub fn take_upgrade(req: axum::extract::Request) -> (Option<OnUpgrade>, bool, Body) {
    let (mut parts, body) = req.into_parts();
    let wants = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    (parts.extensions.remove::<OnUpgrade>(), wants, body)
}

/// Reads a whole (small) body.
pub async fn collect(body: Body) -> Result<bytes::Bytes, crate::error::Error> {
    body.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        crate::error::Error(berth_api_types::ApiError::invalid(format!(
            "error reading request body: {e}"
        )))
    })
}
