//! Reading what is left of a request body before the answer ends.
//!
//! hyper closes the connection as soon as an answer is written over an unread request body,
//! while the client may still be writing it: the client then gets a broken pipe instead of the
//! answer. Two ways to get there:
//! - a handler refuses a request before reading its body (a bad tag on a build, a route that does
//!   not exist): seen with Python's http.client, 2–30 % of such requests;
//! - a service stops reading where its data ends (a tar reader at the first end-of-archive block,
//!   a decompressor at its stream's end) while the client sends more (the second end block,
//!   record padding, a compressor's trailer): a fully cached build answers at once and the docker
//!   CLI failed with "use of closed network connection".
//!
//! Go's HTTP server, and so dockerd, reads up to 256 KiB of an unread body first; this does the
//! same for every request: the body goes to the handler through a shared slot, and what the
//! handler left is read, within a size and a time bound, right away after an error answer and at
//! the end of the answer's body otherwise.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::Mutex;

/// What dockerd (Go's net/http) reads of an unread body before giving up on it.
const LIMIT: usize = 256 * 1024;

/// The request body, shared between the handler (through the stream it gets) and the
/// middleware (which drains it after an error).
#[derive(Clone)]
pub struct Slot(Arc<Mutex<Option<Body>>>);

/// Replaces `req`'s body by a stream reading from a [`Slot`], which is returned.
pub fn share(req: Request) -> (Request, Slot) {
    let (parts, body) = req.into_parts();
    let slot = Slot(Arc::new(Mutex::new(Some(body))));
    let reader = slot.clone();
    let stream = futures_util::stream::unfold(reader, |s| async move {
        let next = {
            let mut guard = s.0.lock().await;
            let body = guard.as_mut()?;
            loop {
                match body.frame().await {
                    None => break None,
                    Some(Err(e)) => break Some(Err(e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            break Some(Ok(data));
                        }
                    }
                }
            }
        };
        if next.is_none() {
            s.0.lock().await.take();
        }
        next.map(|item| (item, s))
    });
    (Request::from_parts(parts, Body::from_stream(stream)), slot)
}

/// The request body as the stream a service reads (what it leaves is drained, see above).
pub fn body_stream(req: Request) -> crate::backend::ByteStream {
    Box::pin(futures_util::TryStreamExt::map_err(
        req.into_body().into_data_stream(),
        std::io::Error::other,
    ))
}

/// Whether `req` announces a body at all.
pub fn has_body(req: &Request) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

impl Slot {
    /// `resp` with what is left of the body read before its end: at once for an error (or an
    /// answer without a body), after the last byte of a streamed answer otherwise. Upgraded
    /// connections (attach, exec) are left alone: the body belongs to the session there.
    pub async fn after(self, resp: Response) -> Response {
        let status = resp.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return resp;
        }
        if !status.is_success() || matches!(status, StatusCode::NO_CONTENT) {
            self.drain().await;
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let tail = futures_util::stream::once(async move {
            self.drain().await;
            None::<Result<axum::body::Bytes, axum::Error>>
        })
        .filter_map(|x| async move { x });
        let stream = body.into_data_stream().chain(tail);
        Response::from_parts(parts, Body::from_stream(stream))
    }

    /// Reads and drops what is left of the body, up to [`LIMIT`] bytes and two seconds.
    pub async fn drain(&self) {
        let Some(mut body) = self.0.lock().await.take() else {
            return;
        };
        let read = async {
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    seen += data.len();
                    if seen > LIMIT {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_handler_reads_through_the_slot_and_the_rest_is_drained() {
        let req = Request::builder()
            .body(Body::from("hello world"))
            .expect("request");
        let (req, slot) = share(req);
        let bytes = req.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"hello world");
        assert!(
            slot.0.lock().await.is_none(),
            "a read body leaves the slot empty"
        );

        let req = Request::builder()
            .body(Body::from("unread"))
            .expect("request");
        let (req, slot) = share(req);
        drop(req);
        assert!(slot.0.lock().await.is_some());
        slot.drain().await;
        assert!(slot.0.lock().await.is_none());
    }
}
