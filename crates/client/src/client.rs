use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame as BodyFrame, Incoming};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::hijack::{self, Hijacked};
use crate::pool::{Pool, Sender};
use crate::stream::{BodyStream, JsonStream};
use crate::{ClientError, Host};

/// Highest API version this client speaks (`/v1.51/...`).
pub const MAX_API_VERSION: &str = "1.51";
/// Lowest API version a daemon may negotiate down to.
pub const MIN_API_VERSION: &str = "1.24";

/// A request body.
pub enum Body {
    Empty,
    /// Sent as `application/json`.
    Json(Vec<u8>),
    /// A complete body with its content type.
    Bytes {
        data: Bytes,
        content_type: String,
    },
    /// A streamed (chunked) body with its content type, e.g. an image tar for load/import.
    Stream {
        stream: BoxStream<'static, std::io::Result<Bytes>>,
        content_type: String,
    },
}

impl Body {
    /// Serializes `value` as a JSON body.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Body, ClientError> {
        Ok(Body::Json(serde_json::to_vec(value)?))
    }

    /// Streams the contents of an async reader (a file, stdin) as the body.
    pub fn reader<R: AsyncRead + Send + 'static>(reader: R, content_type: &str) -> Body {
        Body::Stream {
            stream: tokio_util::io::ReaderStream::new(reader).boxed(),
            content_type: content_type.to_string(),
        }
    }

    fn content_type(&self) -> Option<&str> {
        match self {
            Body::Empty => None,
            Body::Json(_) => Some("application/json"),
            Body::Bytes { content_type, .. } | Body::Stream { content_type, .. } => {
                Some(content_type)
            }
        }
    }

    fn into_http(self) -> UnsyncBoxBody<Bytes, std::io::Error> {
        match self {
            Body::Empty => Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed_unsync(),
            Body::Json(v) => Full::new(Bytes::from(v))
                .map_err(|never| match never {})
                .boxed_unsync(),
            Body::Bytes { data, .. } => Full::new(data)
                .map_err(|never| match never {})
                .boxed_unsync(),
            Body::Stream { stream, .. } => {
                BodyExt::boxed_unsync(StreamBody::new(stream.map_ok(BodyFrame::data)))
            }
        }
    }
}

/// Query parameters, kept in order. Values are sent form-urlencoded.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn new() -> Query {
        Query(Vec::new())
    }

    /// Adds `key=value`.
    pub fn add(mut self, key: &str, value: impl ToString) -> Query {
        self.0.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds `key=value` when `cond` holds.
    pub fn add_if(self, cond: bool, key: &str, value: impl ToString) -> Query {
        if cond {
            self.add(key, value)
        } else {
            self
        }
    }

    /// Adds `key=value` when `value` is set.
    pub fn add_opt<V: ToString>(self, key: &str, value: Option<V>) -> Query {
        match value {
            Some(v) => self.add(key, v),
            None => self,
        }
    }

    /// Adds a boolean the way the docker CLI does (`1`/`0`), only when true.
    pub fn flag(self, key: &str, on: bool) -> Query {
        self.add_if(on, key, "1")
    }

    fn encode(&self) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            ser.append_pair(k, v);
        }
        ser.finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<&[(K, V)]> for Query {
    fn from(pairs: &[(K, V)]) -> Query {
        Query(
            pairs
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
        )
    }
}

/// An Engine API client. Cheap to clone. Every request opens its own connection unless
/// [`Client::reuse_connections`] was asked for; clones share the reused connections.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: String,
    /// TLS for a `tcp://` host.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Keep-alive connections for later requests, when reused.
    pool: Option<Arc<Pool>>,
}

/// A connected byte stream to the daemon.
pub(crate) enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Connects to `addr` (`host:port`) and does the TLS handshake, verifying the daemon's
/// certificate for `host` when the configuration says so.
async fn tls_connect(addr: &str, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<Conn> {
    let name = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls_pki_types::ServerName::try_from(name.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tcp = TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await?;
    Ok(Conn::Tls(Box::new(tls)))
}

/// Compares dotted versions numerically (`1.9` < `1.24`).
pub(crate) fn version_lt(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

impl Client {
    /// A client for `host` speaking [`MAX_API_VERSION`] until [`Client::negotiate`] is called.
    pub fn new(host: Host) -> Client {
        Client {
            host,
            version: MAX_API_VERSION.to_string(),
            tls: None,
            pool: None,
        }
    }

    /// Sends later requests over keep-alive connections that earlier ones have finished with,
    /// instead of a new connection each (the `berth` CLI, whose `run` makes four or five
    /// requests). Hijacked attach and exec connections are never reused.
    pub fn reuse_connections(mut self) -> Client {
        self.pool = Some(Arc::default());
        self
    }

    /// Speaks TLS to a `tcp://` host (a unix socket is used as is).
    pub fn with_tls(mut self, options: &crate::TlsOptions) -> Result<Client, ClientError> {
        if matches!(self.host, Host::Tcp(_)) {
            self.tls = Some(crate::tls::client_config(options)?);
        }
        Ok(self)
    }

    /// Parses `host` (see [`Host::parse`]) and negotiates the API version with the daemon.
    pub async fn connect(host: &str) -> Result<Client, ClientError> {
        let mut c = Client::new(Host::parse(host)?);
        c.negotiate().await?;
        Ok(c)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version used in request paths.
    pub fn api_version(&self) -> &str {
        &self.version
    }

    /// Pins the API version (no negotiation).
    pub fn with_version(mut self, version: &str) -> Client {
        self.version = version.to_string();
        self
    }

    /// `GET /_ping`; returns the response headers (`Api-Version`, `Ostype`, ...).
    pub async fn ping(&self) -> Result<HeaderMap, ClientError> {
        let resp = self
            .send(Method::GET, "/_ping", &Query::new(), Body::Empty, &[])
            .await?;
        let headers = resp.headers().clone();
        let _ = resp.into_body().collect().await;
        Ok(headers)
    }

    /// Pings the daemon and lowers the API version to the daemon's `Api-Version` when it is
    /// older than ours.
    pub async fn negotiate(&mut self) -> Result<(), ClientError> {
        let headers = self.ping().await?;
        if let Some(v) = headers.get("api-version").and_then(|v| v.to_str().ok()) {
            if version_lt(v, MAX_API_VERSION) {
                self.version = v.to_string();
            } else {
                self.version = MAX_API_VERSION.to_string();
            }
        }
        Ok(())
    }

    pub(crate) async fn dial(&self) -> Result<Conn, ClientError> {
        let res = match &self.host {
            Host::Unix(p) => UnixStream::connect(p).await.map(Conn::Unix),
            Host::Tcp(a) => match &self.tls {
                None => TcpStream::connect(a).await.map(Conn::Tcp),
                Some(cfg) => tls_connect(a, cfg.clone()).await,
            },
        };
        res.map_err(|source| ClientError::Connect {
            host: self.host.to_string(),
            source,
        })
    }

    pub(crate) fn host_header(&self) -> String {
        match &self.host {
            Host::Unix(_) => "api.moby.localhost".to_string(),
            Host::Tcp(a) => a.clone(),
        }
    }

    /// The request target: `/v{version}{path}?{query}`. Paths that already carry a version or
    /// are `/_ping` are sent as given.
    pub fn uri(&self, path: &str, query: &Query) -> String {
        let mut uri =
            if path.starts_with("/_ping") || path.starts_with("/v1.") || path.starts_with("/v2.") {
                path.to_string()
            } else {
                format!("/v{}{}", self.version, path)
            };
        let q = query.encode();
        if !q.is_empty() {
            uri.push('?');
            uri.push_str(&q);
        }
        uri
    }

    /// Sends a request and returns the response when its status is below 400; otherwise reads
    /// the body and returns [`ClientError::Api`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.uri(path, query))
            .header(http::header::HOST, self.host_header())
            .header(
                http::header::USER_AGENT,
                concat!("berth-client/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = body.content_type() {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.into_http())?;
        let resp = match &self.pool {
            None => self.http_connect().await?.send_request(req).await?,
            Some(pool) => self.send_pooled(pool, req).await?,
        };
        let status = resp.status().as_u16();
        if status >= 400 {
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(ClientError::from_body(status, &body));
        }
        Ok(resp)
    }

    /// Opens a new HTTP/1.1 connection to the daemon.
    async fn http_connect(&self) -> Result<Sender, ClientError> {
        let io = self.dial().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            // Drives the connection until the response body has been read or dropped, and
            // while it is kept for another request.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends `req` over a pooled connection that is ready for it, or a new one, which is kept
    /// for later requests once the response head is in.
    async fn send_pooled(
        &self,
        pool: &Pool,
        mut req: Request<UnsyncBoxBody<Bytes, std::io::Error>>,
    ) -> Result<Response<Incoming>, ClientError> {
        while let Some(mut sender) = pool.checkout() {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    pool.put(sender);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    // Not sent: the daemon closed the connection meanwhile. Another one.
                    Some(r) => req = r,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut sender = self.http_connect().await?;
        let resp = sender.send_request(req).await?;
        pool.put(sender);
        Ok(resp)
    }

    /// Sends a request and reads the whole response body.
    pub async fn request_bytes(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Body,
    ) -> Result<(u16, Bytes), ClientError> {
        let resp = self.send(method, path, query, body, &[]).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// `GET` and decode a JSON response.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<T, ClientError> {
        let (_, body) = self
            .request_bytes(Method::GET, path, query, Body::Empty)
            .await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// `GET` and return the raw body bytes.
    pub async fn get_bytes(&self, path: &str, query: &Query) -> Result<Bytes, ClientError> {
        Ok(self
            .request_bytes(Method::GET, path, query, Body::Empty)
            .await?
            .1)
    }

    /// `POST` a body and decode a JSON response.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
        body: Body,
    ) -> Result<T, ClientError> {
        let (_, bytes) = self.request_bytes(Method::POST, path, query, body).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `POST` and return the status (e.g. 204, or 304 "not modified") and the raw body.
    pub async fn post(
        &self,
        path: &str,
        query: &Query,
        body: Body,
    ) -> Result<(u16, Bytes), ClientError> {
        self.request_bytes(Method::POST, path, query, body).await
    }

    /// `DELETE` and return the raw body.
    pub async fn delete(&self, path: &str, query: &Query) -> Result<Bytes, ClientError> {
        Ok(self
            .request_bytes(Method::DELETE, path, query, Body::Empty)
            .await?
            .1)
    }

    /// `HEAD` and return the status and headers.
    pub async fn head(&self, path: &str, query: &Query) -> Result<(u16, HeaderMap), ClientError> {
        let resp = self
            .send(Method::HEAD, path, query, Body::Empty, &[])
            .await?;
        Ok((resp.status().as_u16(), resp.headers().clone()))
    }

    /// Sends a request and returns its body as a stream of JSON values (pull, load, build,
    /// events, stats).
    pub async fn json_stream(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Body,
    ) -> Result<JsonStream, ClientError> {
        let resp = self.send(method, path, query, body, &[]).await?;
        Ok(JsonStream::new(resp.into_body()))
    }

    /// Sends a request and returns its raw body as a stream (logs, save, export).
    pub async fn body_stream(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Body,
    ) -> Result<BodyStream, ClientError> {
        let resp = self.send(method, path, query, body, &[]).await?;
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(BodyStream::new(resp.into_body(), content_type))
    }

    /// Hijacks a connection (`Connection: Upgrade`, `Upgrade: tcp`) for attach and exec start.
    /// `body` is sent as JSON when given. See [`Hijacked`].
    pub async fn hijack(
        &self,
        path: &str,
        query: &Query,
        body: Option<Vec<u8>>,
    ) -> Result<Hijacked, ClientError> {
        let conn = self.dial().await?;
        hijack::hijack(conn, &self.host_header(), &self.uri(path, query), body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_uris() {
        let c = Client::new(Host::parse("unix:///x").unwrap());
        assert_eq!(
            c.uri("/containers/json", &Query::new()),
            "/v1.51/containers/json"
        );
        assert_eq!(
            c.uri(
                "/containers/json",
                &Query::new()
                    .flag("all", true)
                    .add("filters", "{\"a\":[\"b c\"]}")
            ),
            "/v1.51/containers/json?all=1&filters=%7B%22a%22%3A%5B%22b+c%22%5D%7D"
        );
        assert_eq!(c.uri("/_ping", &Query::new()), "/_ping");
        let c = c.with_version("1.41");
        assert_eq!(c.uri("/info", &Query::new()), "/v1.41/info");
    }

    #[test]
    fn compares_versions() {
        assert!(version_lt("1.9", "1.24"));
        assert!(version_lt("1.41", "1.51"));
        assert!(!version_lt("1.51", "1.51"));
        assert!(!version_lt("1.52", "1.51"));
    }
}
