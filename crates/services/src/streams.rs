//! What flows through the services besides typed values: byte streams and hijacked connections.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};

/// A body streamed in either direction.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A bidirectional byte stream: a hijacked connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub type BoxedIo = Box<dyn Io>;

/// Runs an attach or exec session over the hijacked connection once the server has it.
pub struct Session {
    /// Whether the stream is raw (TTY) rather than multiplexed.
    pub tty: bool,
    pub run: Box<dyn FnOnce(BoxedIo) -> BoxFuture<'static, ()> + Send>,
}
