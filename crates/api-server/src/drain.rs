//! Reading what is left of a request body after an error answer.
//!
//! A handler that refuses a request before reading its body (a bad tag on a build, a route
//! that does not exist) leaves the body unread. hyper then closes the connection as soon as the
//! answer is written, while the client may still be writing the body: the client gets a broken
//! pipe instead of the error (seen with Python's http.client, 2–30 % of such requests). Go's
//! HTTP server, and so dockerd, reads up to 256 KiB of an unread body first; this does the same:
//! the body goes to the handler through a shared slot, and when the answer is an error the
//! middleware reads what the handler left, within a size and a time bound.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
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

impl Slot {
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
