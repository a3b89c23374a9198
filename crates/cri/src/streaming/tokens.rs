//! One-time tokens for streaming requests, as the kubelet's streaming server hands them out:
//! the CRI call stores the request under a random token and answers a URL holding it; the
//! client's HTTP request to that URL consumes the token (once, within [`TOKEN_TTL`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;

use super::StreamRequest;
use crate::error::{CriError, CriResult};

/// How long a URL stays valid (the kubelet's streaming cache keeps requests one minute).
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Requests handed out and not yet used, at most (the kubelet's limit).
pub const MAX_IN_FLIGHT: usize = 1000;

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (StreamRequest, Instant)>>,
    ttl: Option<Duration>,
}

impl TokenCache {
    pub fn with_ttl(ttl: Duration) -> Self {
        TokenCache {
            entries: Mutex::default(),
            ttl: Some(ttl),
        }
    }

    fn ttl(&self) -> Duration {
        self.ttl.unwrap_or(TOKEN_TTL)
    }

    /// Stores `req` and answers its new token.
    pub fn insert(&self, req: StreamRequest) -> CriResult<String> {
        let now = Instant::now();
        let ttl = self.ttl();
        let mut entries = self.entries.lock().map_err(|_| poisoned())?;
        entries.retain(|_, (_, at)| now.duration_since(*at) < ttl);
        if entries.len() >= MAX_IN_FLIGHT {
            return Err(CriError::Internal(
                "maximum number of in-flight streaming requests exceeded".into(),
            ));
        }
        let token = loop {
            let mut raw = [0u8; 8];
            rand::thread_rng().fill_bytes(&mut raw);
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            if !entries.contains_key(&t) {
                break t;
            }
        };
        entries.insert(token.clone(), (req, now));
        Ok(token)
    }

    /// Takes the request of `token` if it exists and has not expired.
    pub fn consume(&self, token: &str) -> Option<StreamRequest> {
        let mut entries = self.entries.lock().ok()?;
        let (req, at) = entries.remove(token)?;
        (at.elapsed() < self.ttl()).then_some(req)
    }
}

fn poisoned() -> CriError {
    CriError::Internal("streaming token cache lock poisoned".into())
}

/// The handle the gRPC layer uses to turn Exec/Attach/PortForward requests into URLs.
#[derive(Clone)]
pub struct StreamUrls {
    pub(crate) base: String,
    pub(crate) cache: Arc<TokenCache>,
}

impl StreamUrls {
    /// URLs under `base` (`http://127.0.0.1:PORT`), tokens in `cache`.
    pub fn new(base: impl Into<String>, cache: Arc<TokenCache>) -> Self {
        StreamUrls {
            base: base.into().trim_end_matches('/').to_string(),
            cache,
        }
    }

    pub fn issue(&self, req: StreamRequest) -> CriResult<String> {
        let kind = req.kind();
        let token = self.cache.insert(req)?;
        Ok(format!("{}/{}/{}", self.base, kind, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streaming::PortForwardParams;

    fn pf() -> StreamRequest {
        StreamRequest::PortForward(PortForwardParams {
            pod_sandbox_id: "p".into(),
            ports: vec![80],
        })
    }

    #[test]
    fn a_token_is_used_once() {
        let cache = Arc::new(TokenCache::default());
        let urls = StreamUrls::new("http://127.0.0.1:1/", cache.clone());
        let url = urls.issue(pf()).unwrap();
        let token = url.strip_prefix("http://127.0.0.1:1/portforward/").unwrap();
        assert_eq!(cache.consume(token), Some(pf()));
        assert_eq!(cache.consume(token), None);
        assert_eq!(cache.consume("nope"), None);
    }

    #[test]
    fn tokens_expire() {
        let cache = TokenCache::with_ttl(Duration::from_millis(1));
        let t = cache.insert(pf()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.consume(&t), None);
    }

    #[test]
    fn tokens_are_distinct() {
        let cache = TokenCache::default();
        let a = cache.insert(pf()).unwrap();
        let b = cache.insert(pf()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 11);
    }
}
