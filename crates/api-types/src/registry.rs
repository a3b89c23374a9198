//! Registry credentials: Docker's `AuthConfig`, what clients send base64url-encoded in
//! `X-Registry-Auth` and as the body of `POST /auth`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Docker's `AuthConfig`: what clients send base64url-encoded in `X-Registry-Auth` and as the
/// body of `POST /auth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 of `user:password` (config.json form).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// A refresh token from an OAuth-capable token server.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token to send as is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64url JSON (padded or not; some clients send
    /// standard base64). An empty or `{}` header means anonymous.
    pub fn from_header(value: &str) -> Option<AuthConfig> {
        Self::from_header_with(value, |raw| serde_json::from_slice(raw).ok())
    }

    /// [`AuthConfig::from_header`] with the JSON decoder given (the daemon decodes by Go's
    /// rules, as dockerd does).
    pub fn from_header_with(
        value: &str,
        decode: impl FnOnce(&[u8]) -> Option<AuthConfig>,
    ) -> Option<AuthConfig> {
        let v = value.trim();
        if v.is_empty() {
            return None;
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let raw = engines.iter().find_map(|e| e.decode(v).ok())?;
        let mut a = decode(&raw)?;
        a.fill_from_auth();
        (!a.is_empty()).then_some(a)
    }

    /// Splits `auth` (base64 `user:pass`) into username/password when those are empty.
    pub fn fill_from_auth(&mut self) {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim()) {
                if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                    self.username = u.to_string();
                    self.password = p.to_string();
                }
            }
        }
    }

    /// Whether nothing usable is set.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identitytoken.is_empty()
            && self.registrytoken.is_empty()
    }

    /// `Basic <base64(user:pass)>` when a username is set.
    pub fn basic_header(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.username, self.password))
        ))
    }

    /// The header value encoding, as the docker CLI sends it.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}
