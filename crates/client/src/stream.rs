use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use tokio::io::AsyncRead;

use crate::mux::{Frame, FrameDecoder};
use crate::ClientError;

/// A raw response body, read chunk by chunk.
pub struct BodyStream {
    body: Incoming,
    content_type: Option<String>,
}

impl BodyStream {
    pub(crate) fn new(body: Incoming, content_type: Option<String>) -> BodyStream {
        BodyStream { body, content_type }
    }

    /// Wraps a response returned by [`crate::Client::send`].
    pub fn from_response(resp: http::Response<Incoming>) -> BodyStream {
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        BodyStream::new(resp.into_body(), content_type)
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The next chunk of data, `None` at the end.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Some(Ok(data));
                        }
                    }
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// The body as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + Unpin {
        futures_util::stream::unfold(self, |mut s| async move {
            let item = s.chunk().await?;
            Some((item.map_err(std::io::Error::other), s))
        })
        .boxed()
    }

    /// The body as an `AsyncRead`.
    pub fn into_reader(self) -> impl AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.into_stream())
    }

    /// Reads the body as 8-byte framed stdout/stderr (logs of a non-TTY container).
    /// Returns the next frame, `None` at the end.
    pub async fn next_frame(
        &mut self,
        decoder: &mut FrameDecoder,
    ) -> Option<Result<Frame, ClientError>> {
        loop {
            match decoder.next_frame() {
                Some(f) => return Some(Ok(f)),
                None => match self.chunk().await {
                    Some(Ok(data)) => decoder.push(&data),
                    Some(Err(e)) => return Some(Err(e)),
                    None => {
                        if decoder.pending() > 0 {
                            return Some(Err(ClientError::Protocol(
                                "truncated stream frame".into(),
                            )));
                        }
                        return None;
                    }
                },
            }
        }
    }
}

/// A body of concatenated (usually newline-delimited) JSON values.
pub struct JsonStream {
    body: BodyStream,
    buf: BytesMut,
    done: bool,
}

impl JsonStream {
    pub(crate) fn new(body: Incoming) -> JsonStream {
        JsonStream {
            body: BodyStream::new(body, None),
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// Wraps a response returned by [`crate::Client::send`].
    pub fn from_response(resp: http::Response<Incoming>) -> JsonStream {
        JsonStream::new(resp.into_body())
    }

    /// The next JSON value, `None` at the end of the body.
    pub async fn next(&mut self) -> Option<Result<serde_json::Value, ClientError>> {
        self.next_as().await
    }

    /// The next value decoded as `T`.
    pub async fn next_as<T: DeserializeOwned>(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            if let Some(r) = take_value(&mut self.buf) {
                return Some(r.map_err(ClientError::from));
            }
            if self.done {
                if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                    return None;
                }
                self.buf.clear();
                return Some(Err(ClientError::Protocol("truncated json stream".into())));
            }
            match self.body.chunk().await {
                Some(Ok(data)) => self.buf.extend_from_slice(&data),
                Some(Err(e)) => return Some(Err(e)),
                None => self.done = true,
            }
        }
    }
}

/// Takes one complete JSON value off the front of `buf`; `None` when more bytes are needed.
pub(crate) fn take_value<T: DeserializeOwned>(
    buf: &mut BytesMut,
) -> Option<Result<T, serde_json::Error>> {
    let skip = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
    buf.advance(skip);
    if buf.is_empty() {
        return None;
    }
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<T>();
    match it.next() {
        Some(Ok(v)) => {
            let used = it.byte_offset();
            buf.advance(used);
            Some(Ok(v))
        }
        Some(Err(e)) if e.is_eof() => None,
        Some(Err(e)) => {
            // Drop the bad line so the caller can go on.
            let end = buf
                .iter()
                .position(|&b| b == b'\n')
                .map(|p| p + 1)
                .unwrap_or(buf.len());
            buf.advance(end);
            Some(Err(e))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_concatenated_json() {
        let mut buf = BytesMut::from(&b"{\"status\":\"a\"}\r\n{\"status\":\"b\"}{\"st"[..]);
        let v: serde_json::Value = take_value(&mut buf).unwrap().unwrap();
        assert_eq!(v["status"], "a");
        let v: serde_json::Value = take_value(&mut buf).unwrap().unwrap();
        assert_eq!(v["status"], "b");
        assert!(take_value::<serde_json::Value>(&mut buf).is_none());
        buf.extend_from_slice(b"atus\":\"c\"}\n");
        let v: serde_json::Value = take_value(&mut buf).unwrap().unwrap();
        assert_eq!(v["status"], "c");
        assert!(take_value::<serde_json::Value>(&mut buf).is_none());
    }

    #[test]
    fn skips_bad_lines() {
        let mut buf = BytesMut::from(&b"nope\n{\"a\":1}\n"[..]);
        assert!(take_value::<serde_json::Value>(&mut buf).unwrap().is_err());
        let v: serde_json::Value = take_value(&mut buf).unwrap().unwrap();
        assert_eq!(v["a"], 1);
    }
}
