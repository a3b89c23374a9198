//! The HTTP side of the distribution API: endpoint and scheme choice, the auth handshake
//! (`GET /v2/` → `WWW-Authenticate` → basic credentials or a bearer token), and the
//! manifest/blob/upload requests the pull and push pipelines are built from.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::Digest;
use bytes::Bytes;
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::auth::{parse_challenge, AuthConfig, Challenge};
use crate::config::{api_host, RegistryConfig};
use crate::error::{Error, Result};
use crate::manifest::ACCEPT_MANIFESTS;

struct SharedClients {
    verify: reqwest::Client,
    noverify: reqwest::Client,
}

/// Talks to any number of registries; cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// The shared verifying client and, for registries marked insecure that do speak TLS, one
    /// that does not verify certificates. Built on first use: loading the system's CA bundle
    /// and the TLS stack costs the daemon a megabyte or more of memory it would otherwise hold
    /// idle from its start, registries or not.
    shared: Arc<OnceLock<std::result::Result<SharedClients, String>>>,
    config: Arc<RegistryConfig>,
    /// Chosen `scheme://host` per registry host.
    bases: Arc<Mutex<HashMap<String, String>>>,
    /// Verifying clients for secure hosts that have their own `certs.d` entries.
    host_clients: Arc<Mutex<HashMap<String, reqwest::Client>>>,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
}

/// How a repository session authenticates each request.
#[derive(Debug, Clone, Default)]
enum Authz {
    #[default]
    None,
    /// The registry asked for basic auth and the client sent no credentials.
    MissingBasic,
    Header(String),
}

/// A session with one repository on one registry, authenticated for pull (and push).
#[derive(Clone)]
pub struct Repository {
    client: Client,
    http: reqwest::Client,
    /// `http://127.0.0.1:5000`
    pub base: String,
    /// `127.0.0.1:5000`
    pub host: String,
    /// `test/busybox`
    pub name: String,
    authz: Authz,
}

#[derive(Deserialize)]
struct RegistryErrors {
    #[serde(default)]
    errors: Vec<RegistryErrorItem>,
}

#[derive(Deserialize)]
struct RegistryErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Formats a registry's error body like Go's errcode: `manifest unknown: manifest unknown`.
/// Token servers answer `{"details": "..."}`, shown as `unauthorized: ...` like Docker does.
fn registry_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(d) = v.get("details").and_then(|d| d.as_str()) {
            return format!("unauthorized: {d}");
        }
    }
    if let Ok(e) = serde_json::from_slice::<RegistryErrors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| {
                let code = i.code.to_lowercase().replace('_', " ");
                if i.message.is_empty() {
                    code
                } else {
                    format!("{code}: {}", i.message)
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(", ");
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() || text.len() > 200 {
        format!(
            "unexpected status from registry: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    } else {
        text
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

impl Client {
    pub fn new(config: RegistryConfig) -> Result<Client> {
        Ok(Client {
            shared: Arc::new(OnceLock::new()),
            config: Arc::new(config),
            bases: Arc::new(Mutex::new(HashMap::new())),
            host_clients: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn shared(&self) -> Result<&SharedClients> {
        self.shared
            .get_or_init(|| {
                let build = |b: reqwest::ClientBuilder| {
                    b.build().map_err(|e| format!("creating HTTP client: {e}"))
                };
                Ok(SharedClients {
                    verify: build(crate::tls::with_system_roots(builder()))?,
                    noverify: build(builder().danger_accept_invalid_certs(true))?,
                })
            })
            .as_ref()
            .map_err(|e| Error::Invalid(e.clone()))
    }

    fn http(&self) -> Result<reqwest::Client> {
        Ok(self.shared()?.verify.clone())
    }

    fn http_noverify(&self) -> Result<reqwest::Client> {
        Ok(self.shared()?.noverify.clone())
    }

    /// The verifying client for a secure host: the shared one, or one that also trusts the
    /// CAs (and presents the client certificate) in `certs.d/<host>/`. Read on first use.
    fn secure_http(&self, host: &str) -> Result<reqwest::Client> {
        let Some(dir) = &self.config.certs_dir else {
            return self.http();
        };
        if let Some(c) = self
            .host_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return Ok(c.clone());
        }
        let certs = crate::tls::read_host_dir(dir, host)?;
        if certs.is_empty() {
            return self.http();
        }
        let c = crate::tls::apply(crate::tls::with_system_roots(builder()), &certs)?
            .build()
            .map_err(|e| Error::Invalid(format!("creating HTTP client for {host}: {e}")))?;
        self.host_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), c.clone());
        Ok(c)
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// `https://host`, or for an insecure registry whichever of https (unverified) and http
    /// answers, https first as Docker does.
    async fn base_for(&self, host: &str) -> Result<(String, reqwest::Client)> {
        let secure = !self.config.is_insecure(host);
        let cached = self
            .bases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned();
        let pick = |base: &str| -> Result<reqwest::Client> {
            if base.starts_with("https://") && !secure {
                self.http_noverify()
            } else if secure {
                self.secure_http(host)
            } else {
                self.http()
            }
        };
        if let Some(b) = cached {
            let c = pick(&b)?;
            return Ok((b, c));
        }
        let base = if secure {
            format!("https://{host}")
        } else {
            let https = format!("https://{host}");
            let probe = self
                .http_noverify()?
                .get(format!("{https}/v2/"))
                .timeout(Duration::from_secs(3))
                .send()
                .await;
            match probe {
                Ok(_) => https,
                Err(_) => format!("http://{host}"),
            }
        };
        self.bases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), base.clone());
        let c = pick(&base)?;
        Ok((base, c))
    }

    /// Opens an authenticated session with `domain/name` (reference form: `docker.io`,
    /// `library/busybox`). `push` asks for push rights too.
    pub async fn repository(
        &self,
        domain: &str,
        name: &str,
        auth: Option<&AuthConfig>,
        push: bool,
    ) -> Result<Repository> {
        let host = api_host(domain).to_string();
        let (base, http) = self.base_for(&host).await?;
        let mut repo = Repository {
            client: self.clone(),
            http,
            base,
            host,
            name: name.to_string(),
            authz: Authz::None,
        };
        let scope = format!(
            "repository:{name}:{}",
            if push { "pull,push" } else { "pull" }
        );
        repo.authz = repo.handshake(auth, Some(&scope)).await?;
        Ok(repo)
    }

    /// Sessions on the configured Docker Hub mirrors (`registry-mirrors`, full URLs such as
    /// `http://127.0.0.1:5001`), for pulls of `docker.io` images; mirrors that do not answer
    /// are skipped. Credentials are not sent to mirrors.
    pub async fn mirror_repositories(&self, name: &str) -> Vec<Repository> {
        let mut out = Vec::new();
        for m in &self.config.mirrors {
            let base = m.trim_end_matches('/').to_string();
            let host = base
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_string();
            let http = if !base.starts_with("https://") {
                self.http()
            } else if self.config.is_insecure(&host) {
                self.http_noverify()
            } else {
                self.secure_http(&host)
            };
            let http = match http {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!("skipping registry mirror {m}: {e}");
                    continue;
                }
            };
            let mut repo = Repository {
                client: self.clone(),
                http,
                base,
                host,
                name: name.to_string(),
                authz: Authz::None,
            };
            match repo
                .handshake(None, Some(&format!("repository:{name}:pull")))
                .await
            {
                Ok(a) => {
                    repo.authz = a;
                    out.push(repo);
                }
                Err(e) => tracing::info!("skipping registry mirror {m}: {e}"),
            }
        }
        out
    }

    /// Validates credentials against a registry (`docker login`): `Ok` when the registry
    /// accepts them (or needs none).
    pub async fn login(&self, domain: &str, auth: &AuthConfig) -> Result<()> {
        let host = api_host(domain).to_string();
        let (base, http) = self.base_for(&host).await?;
        let repo = Repository {
            client: self.clone(),
            http,
            base: base.clone(),
            host,
            name: String::new(),
            authz: Authz::None,
        };
        let authz = repo.handshake(Some(auth), None).await?;
        let Authz::Header(h) = authz else {
            return Ok(());
        };
        let url = format!("{base}/v2/");
        let resp = repo
            .http
            .get(&url)
            .header(header::AUTHORIZATION, h)
            .send()
            .await
            .map_err(|e| Error::transport("Get", &url, &e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Error::Unauthorized(format!(
                "login attempt to {url} failed with status: {} {}",
                resp.status().as_u16(),
                resp.status().canonical_reason().unwrap_or("")
            )))
        }
    }
}

impl Client {
    /// The legacy search API (`GET /v1/search?q=&n=`), which Docker Hub implements and the
    /// reference registry does not.
    pub async fn search(
        &self,
        domain: &str,
        term: &str,
        limit: usize,
        auth: Option<&AuthConfig>,
    ) -> Result<Vec<serde_json::Value>> {
        #[derive(Deserialize)]
        struct Results {
            #[serde(default)]
            results: Vec<serde_json::Value>,
        }
        let host = match domain {
            "docker.io" => "index.docker.io",
            d => d,
        };
        let (base, http) = self.base_for(host).await?;
        let url = format!("{base}/v1/search");
        let mut req = http
            .get(&url)
            .query(&[("q", term), ("n", &limit.to_string())]);
        if let Some(h) = auth.and_then(|a| a.basic_header()) {
            req = req.header(header::AUTHORIZATION, h);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::transport("Get", &url, &e))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(Error::NotFound(format!(
                "registry {host} does not support search (GET {url} answered {} {})",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::transport("Get", &url, &e))?;
        if !status.is_success() {
            return Err(Error::Registry(format!(
                "searching {host}: {}",
                registry_message(status, &body)
            )));
        }
        let r: Results = serde_json::from_slice(&body)
            .map_err(|e| Error::Registry(format!("invalid search response from {host}: {e}")))?;
        Ok(r.results)
    }
}

impl Repository {
    /// `GET /v2/`: no challenge means anonymous access; a Basic challenge means credentials
    /// on every request; a Bearer challenge means a token from the realm for `scope`.
    async fn handshake(&self, auth: Option<&AuthConfig>, scope: Option<&str>) -> Result<Authz> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::transport("Get", &url, &e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(Authz::None);
        }
        let challenge = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            // Prefer bearer when a registry offers both.
            .max_by_key(|c| matches!(c, Challenge::Bearer { .. }));
        match challenge {
            Some(Challenge::Basic) | None => match auth.and_then(|a| a.basic_header()) {
                Some(h) => Ok(Authz::Header(h)),
                None => Ok(Authz::MissingBasic),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(a) = auth.filter(|a| !a.registrytoken.is_empty()) {
                    return Ok(Authz::Header(format!("Bearer {}", a.registrytoken)));
                }
                let token = self
                    .fetch_token(&realm, service.as_deref(), scope, auth)
                    .await?;
                Ok(Authz::Header(format!("Bearer {token}")))
            }
        }
    }

    /// The token endpoint: `GET realm?service=&scope=` with basic credentials when we have
    /// them, or `POST` with a refresh token (`identitytoken`).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        auth: Option<&AuthConfig>,
    ) -> Result<String> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            params.push(("service", s));
        }
        if let Some(s) = scope {
            params.push(("scope", s));
        }
        let req = match auth.filter(|a| !a.identitytoken.is_empty()) {
            Some(a) => {
                params.push(("grant_type", "refresh_token"));
                params.push(("refresh_token", &a.identitytoken));
                params.push(("client_id", "docker"));
                self.http.post(realm).form(&params)
            }
            None => {
                let mut r = self.http.get(realm).query(&params);
                if let Some(h) = auth.and_then(|a| a.basic_header()) {
                    r = r.header(header::AUTHORIZATION, h);
                }
                r
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| Error::transport("Get", realm, &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::transport("Get", realm, &e))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let msg = registry_message(status, &body);
            return Err(Error::Unauthorized(format!(
                "Get \"{}/v2/\": {}",
                self.base,
                if msg.starts_with("unexpected status") {
                    "unauthorized: incorrect username or password".to_string()
                } else {
                    msg
                }
            )));
        }
        if !status.is_success() {
            return Err(Error::Registry(format!(
                "fetching token from {realm}: {}",
                registry_message(status, &body)
            )));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| Error::Registry(format!("invalid token response from {realm}: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if token.is_empty() {
            return Err(Error::Registry(format!(
                "token server {realm} sent no token"
            )));
        }
        Ok(token)
    }

    /// Absolute URL for a path (`/v2/...`) or a `Location` header (absolute or relative).
    pub(crate) fn url(&self, path_or_location: &str) -> String {
        if path_or_location.starts_with("http://") || path_or_location.starts_with("https://") {
            path_or_location.to_string()
        } else if path_or_location.starts_with('/') {
            format!("{}{path_or_location}", self.base)
        } else {
            format!("{}/{path_or_location}", self.base)
        }
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let mut r = self.http.request(method, url);
        if let Authz::Header(h) = &self.authz {
            r = r.header(header::AUTHORIZATION, h);
        }
        r
    }

    fn method_name(m: &Method) -> String {
        let s = m.as_str();
        format!("{}{}", &s[..1], s[1..].to_lowercase())
    }

    /// Sends and turns error statuses into [`Error`]s; `what` names the object for 404s.
    async fn send(
        &self,
        method: Method,
        req: RequestBuilder,
        url: &str,
        what: &str,
    ) -> Result<Response> {
        let resp = req
            .send()
            .await
            .map_err(|e| Error::transport(&Self::method_name(&method), url, &e))?;
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let msg = registry_message(status, &body);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                if matches!(self.authz, Authz::MissingBasic) {
                    Error::Unauthorized(format!(
                        "{} \"{url}\": no basic auth credentials",
                        Self::method_name(&method)
                    ))
                } else {
                    Error::Unauthorized(msg)
                }
            }
            StatusCode::NOT_FOUND => Error::NotFound(if what.is_empty() {
                msg
            } else {
                format!("{what} not found: {msg}")
            }),
            _ => Error::Registry(msg),
        })
    }

    /// Fetches a manifest by tag or digest: (bytes, media type, digest of the bytes).
    /// By digest, the bytes must hash to it.
    pub async fn manifest(&self, reference: &str, shown: &str) -> Result<(Bytes, String, Digest)> {
        let url = self.url(&format!("/v2/{}/manifests/{reference}", self.name));
        let req = self
            .request(Method::GET, &url)
            .header(header::ACCEPT, ACCEPT_MANIFESTS.join(", "));
        let resp = self
            .send(Method::GET, req, &url, &format!("manifest for {shown}"))
            .await?;
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::transport("Get", &url, &e))?;
        let digest = Digest::sha256_of(&body);
        if reference.starts_with("sha256:") && digest.as_str() != reference {
            return Err(Error::Verification(format!(
                "manifest verification failed for digest {reference}"
            )));
        }
        Ok((body, media_type, digest))
    }

    /// Starts a blob download; the caller streams and verifies the body. `offset` > 0 asks
    /// for the rest of a partly downloaded blob (`Range`); the returned flag says whether
    /// the registry honoured it.
    pub async fn blob(&self, digest: &Digest, offset: u64) -> Result<(Response, bool)> {
        let url = self.url(&format!("/v2/{}/blobs/{digest}", self.name));
        let mut req = self.request(Method::GET, &url);
        if offset > 0 {
            req = req.header(header::RANGE, format!("bytes={offset}-"));
        }
        let resp = self
            .send(Method::GET, req, &url, &format!("blob {digest}"))
            .await?;
        let partial = resp.status() == StatusCode::PARTIAL_CONTENT;
        Ok((resp, partial))
    }

    /// Fetches a small blob (a config) whole and verifies it.
    pub async fn blob_bytes(&self, digest: &Digest) -> Result<Bytes> {
        let url = self.url(&format!("/v2/{}/blobs/{digest}", self.name));
        let (resp, _) = self.blob(digest, 0).await?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::transport("Get", &url, &e))?;
        if Digest::sha256_of(&body) != *digest {
            return Err(Error::blob_mismatch(digest));
        }
        Ok(body)
    }

    /// `HEAD /v2/<name>/blobs/<digest>`.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("/v2/{}/blobs/{digest}", self.name));
        let resp = self
            .request(Method::HEAD, &url)
            .send()
            .await
            .map_err(|e| Error::transport("Head", &url, &e))?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Unauthorized(
                if matches!(self.authz, Authz::MissingBasic) {
                    format!("Head \"{url}\": no basic auth credentials")
                } else {
                    "denied: requested access to the resource is denied".to_string()
                },
            )),
            s => Err(Error::Registry(registry_message(s, b""))),
        }
    }

    /// Tries a cross-repository mount (`POST ...uploads/?mount=&from=`): `Ok(None)` when the
    /// blob was mounted, otherwise the upload location the registry opened instead.
    pub async fn start_upload(&self, mount: Option<(&Digest, &str)>) -> Result<Option<String>> {
        let mut url = self.url(&format!("/v2/{}/blobs/uploads/", self.name));
        if let Some((d, from)) = mount {
            url.push_str(&format!("?mount={d}&from={from}"));
        }
        let req = self
            .request(Method::POST, &url)
            .header(header::CONTENT_LENGTH, "0");
        let resp = self.send(Method::POST, req, &url, "").await?;
        if resp.status() == StatusCode::CREATED && mount.is_some() {
            return Ok(None);
        }
        location(&resp).map(Some)
    }

    /// `PATCH` a chunk (or the whole stream) to an upload; returns the next location.
    pub async fn patch_upload(
        &self,
        loc: &str,
        body: reqwest::Body,
        range: Option<(u64, u64)>,
    ) -> Result<String> {
        let url = self.url(loc);
        let mut req = self
            .request(Method::PATCH, &url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if let Some((start, end)) = range {
            req = req
                .header(header::CONTENT_RANGE, format!("{start}-{end}"))
                .header(header::CONTENT_LENGTH, (end - start + 1).to_string());
        }
        let resp = self.send(Method::PATCH, req, &url, "").await?;
        location(&resp)
    }

    /// Completes an upload with `PUT ?digest=` (and a last chunk, possibly empty).
    pub async fn finish_upload(
        &self,
        loc: &str,
        digest: &Digest,
        body: Option<Bytes>,
    ) -> Result<()> {
        let mut url = self.url(loc);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let body = body.unwrap_or_default();
        let req = self
            .request(Method::PUT, &url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, body.len().to_string())
            .body(body);
        self.send(Method::PUT, req, &url, "").await?;
        Ok(())
    }

    /// `PUT /v2/<name>/manifests/<tag>`.
    pub async fn put_manifest(&self, tag: &str, media_type: &str, body: Bytes) -> Result<()> {
        let url = self.url(&format!("/v2/{}/manifests/{tag}", self.name));
        let req = self
            .request(Method::PUT, &url)
            .header(header::CONTENT_TYPE, media_type)
            .body(body);
        self.send(Method::PUT, req, &url, "").await?;
        Ok(())
    }

    /// `GET /v2/<name>/tags/list` (first page is enough for `-a` on small registries; the
    /// `Link` header is followed for more).
    pub async fn tags(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut next = Some(format!("/v2/{}/tags/list", self.name));
        while let Some(path) = next.take() {
            let url = self.url(&path);
            let req = self.request(Method::GET, &url);
            let resp = self.send(Method::GET, req, &url, "repository").await?;
            next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                });
            let body = resp
                .bytes()
                .await
                .map_err(|e| Error::transport("Get", &url, &e))?;
            let t: Tags = serde_json::from_slice(&body)
                .map_err(|e| Error::Registry(format!("invalid tag list: {e}")))?;
            out.extend(t.tags.unwrap_or_default());
        }
        Ok(out)
    }

    /// The client this session came from.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn location(resp: &Response) -> Result<String> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::Registry("registry sent no upload location".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_like_docker() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            registry_message(StatusCode::NOT_FOUND, body),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(
            registry_message(
                StatusCode::UNAUTHORIZED,
                br#"{"details":"incorrect username or password"}"#
            ),
            "unauthorized: incorrect username or password"
        );
        assert_eq!(
            registry_message(StatusCode::BAD_GATEWAY, b""),
            "unexpected status from registry: 502 Bad Gateway"
        );
    }
}
