//! Request bodies handed to a service as a stream (build contexts, image loads and imports,
//! archive uploads), read to their end before the answer ends.
//!
//! A service stops reading where its data ends: the tar reader at the first end-of-archive
//! block, a decompressor at its stream's end. Clients send more after that (the second end
//! block, record padding, a compressor's trailer). If the response finishes over an unread
//! request body, the HTTP server closes the connection while the client is still writing, and
//! the docker CLI fails with "use of closed network connection" (seen on fully cached builds,
//! which answer at once). So what the service leaves unread comes back here when it drops the
//! stream, and is read and dropped (bounded) before the response's last byte.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::BodyDataStream;
use axum::extract::Request;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::backend::ByteStream;

/// The most read and dropped after the service is done; a client that sends more has its
/// connection closed instead.
const MAX_TRAILER: usize = 16 << 20;

type Rest = Arc<Mutex<Option<BodyDataStream>>>;

/// What the service left of a request body.
pub(crate) struct Upload {
    rest: Rest,
}

/// Splits `req`'s body into the stream the service reads and the [`Upload`] that reads what it
/// leaves.
pub(crate) fn upload(req: Request) -> (ByteStream, Upload) {
    let rest: Rest = Arc::default();
    let body = ServiceBody {
        inner: Some(req.into_body().into_data_stream()),
        rest: rest.clone(),
    };
    (Box::pin(body), Upload { rest })
}

impl Upload {
    /// `response`, then the draining of the request body before the response ends.
    pub fn then_drain(self, response: ByteStream) -> ByteStream {
        let tail = futures_util::stream::once(async move {
            self.drain().await;
            None::<std::io::Result<Bytes>>
        })
        .filter_map(|x| async move { x });
        Box::pin(response.chain(tail))
    }

    /// Reads and drops what the service left (for answers without a streamed body).
    pub async fn drain(self) {
        let rest = self.rest.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut rest) = rest else { return };
        let mut total = 0usize;
        while let Some(chunk) = rest.next().await {
            match chunk {
                Ok(b) => total += b.len(),
                Err(_) => return,
            }
            if total > MAX_TRAILER {
                return;
            }
        }
    }
}

/// The body as the service sees it; hands what is left back to its [`Upload`] when dropped.
struct ServiceBody {
    inner: Option<BodyDataStream>,
    rest: Rest,
}

impl Stream for ServiceBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => Poll::Ready(Some(r.map_err(std::io::Error::other))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ServiceBody {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            *self.rest.lock().unwrap_or_else(|p| p.into_inner()) = Some(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(chunks: Vec<&'static [u8]>) -> Request {
        let s = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        Request::new(axum::body::Body::from_stream(s))
    }

    #[tokio::test]
    async fn what_the_service_leaves_is_read_before_the_answer_ends() {
        let (mut body, upload) = upload(request(vec![b"archive", b"padding", b"more"]));
        assert_eq!(body.next().await.unwrap().unwrap(), "archive");
        drop(body);
        assert!(upload.rest.lock().unwrap().is_some(), "the rest came back");
        let answer: ByteStream =
            Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(b"{}"))]));
        let rest = upload.rest.clone();
        let out: Vec<_> = upload.then_drain(answer).collect().await;
        assert_eq!(out.len(), 1);
        assert!(rest.lock().unwrap().is_none(), "drained");
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_leaves_nothing() {
        let (body, upload) = upload(request(vec![b"all"]));
        let read: Vec<_> = body.collect().await;
        assert_eq!(read.len(), 1);
        assert!(upload.rest.lock().unwrap().is_none());
        upload.drain().await;
    }
}
