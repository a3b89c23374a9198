//! Credentials (`X-Registry-Auth`, `POST /auth` bodies) and `WWW-Authenticate` challenges.

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

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2` with quoted values that may contain commas and escaped quotes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
    }

    #[test]
    fn registry_auth_header_round_trip() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p@ss:word".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        let h = a.to_header();
        assert_eq!(AuthConfig::from_header(&h), Some(a.clone()));
        let unpadded = h.trim_end_matches('=');
        assert_eq!(AuthConfig::from_header(unpadded), Some(a));
        assert_eq!(AuthConfig::from_header(""), None);
        assert_eq!(AuthConfig::from_header("e30="), None, "{{}} is anonymous");
        assert_eq!(AuthConfig::from_header("!!"), None);
    }

    #[test]
    fn auth_field_is_split() {
        let mut a = AuthConfig {
            auth: "dTpwOnE=".into(), // u:p:q
            ..Default::default()
        };
        a.fill_from_auth();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p:q"));
        assert_eq!(a.basic_header().as_deref(), Some("Basic dTpwOnE="));
    }
}
