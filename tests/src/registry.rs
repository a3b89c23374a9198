//! A private Debian `docker-registry` per test: 127.0.0.1 on a free port, storage in a temp
//! directory, optional htpasswd basic auth; killed and removed on drop. Plus a tiny HTTP
//! client for pushing hand-made blobs and manifests straight to it, and the pushes and pulls
//! through a berthd that more than one registry test file makes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{assert_ok, stdout, Daemon};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// (status, headers with lowercased names, body)
pub type HttpReply = (u16, Vec<(String, String)>, Vec<u8>);

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// Docker's image manifest media type (what `docker push` uploads).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub struct TestRegistry {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    /// Serving HTTPS (readiness is a TCP connect then, not `GET /v2/`).
    tls: bool,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl TestRegistry {
    /// An open registry.
    pub fn start() -> TestRegistry {
        Self::start_inner(None, None)
    }

    /// A registry serving HTTPS only with the server certificate `pki` issued for
    /// 127.0.0.1; with `require_client_cert` it also demands a client certificate
    /// signed by the test CA.
    pub fn start_tls(pki: &TestPki, require_client_cert: bool) -> TestRegistry {
        let mut tls = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            pki.dir.join("server.crt").display(),
            pki.dir.join("server.key").display()
        );
        if require_client_cert {
            tls.push_str(&format!(
                "    clientcas:\n      - {}\n",
                pki.dir.join("ca.crt").display()
            ));
        }
        Self::start_inner(None, Some(tls))
    }

    /// A registry that wants basic auth for `user`/`password` (bcrypt htpasswd).
    pub fn start_with_htpasswd(user: &str, password: &str) -> TestRegistry {
        Self::start_inner(Some((user, password)), None)
    }

    fn start_inner(auth: Option<(&str, &str)>, tls: Option<String>) -> TestRegistry {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!(
            "/var/tmp/berth-test-registry-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("storage")).expect("registry dir");
        let mut auth_yaml = String::new();
        if let Some((u, p)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).expect("write htpasswd");
            auth_yaml = format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        let mut r = TestRegistry {
            port: free_port(),
            dir,
            child: None,
            tls: tls.is_some(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n{}{auth_yaml}",
            r.dir.join("storage").display(),
            r.port,
            tls.unwrap_or_default()
        );
        std::fs::write(r.dir.join("config.yml"), config).expect("registry config");
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("registry.log"))
            .expect("registry log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.tls {
                if TcpStream::connect(self.addr()).is_ok() {
                    return;
                }
            } else if let Ok((s, _, _)) = self.http("GET", "/v2/", &[], b"") {
                if s == 200 || s == 401 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not come up: {}",
            std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
        );
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the registry (storage stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Where the registry keeps the blob with this hex digest.
    pub fn blob_data_path(&self, hex: &str) -> PathBuf {
        self.dir.join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// One plain HTTP/1.1 request: (status, headers lowercased, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpReply> {
        http_request(&self.addr(), method, path, headers, body)
    }

    /// Uploads a blob (POST + PUT ?digest=) and returns its digest.
    pub fn put_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let (s, h, _) = self
            .http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"")
            .expect("start upload");
        assert_eq!(s, 202, "start upload");
        let loc = header(&h, "location").expect("upload location");
        let loc = loc
            .strip_prefix(&format!("http://{}", self.addr()))
            .unwrap_or(&loc)
            .to_string();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let (s, _, b) = self
            .http(
                "PUT",
                &format!("{loc}{sep}digest={digest}"),
                &[("Content-Type", "application/octet-stream")],
                data,
            )
            .expect("finish upload");
        assert_eq!(s, 201, "finish upload: {}", String::from_utf8_lossy(&b));
        digest
    }

    /// Puts a manifest under `reference`; returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let (s, _, b) = self
            .http(
                "PUT",
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Content-Type", media_type)],
                body,
            )
            .expect("put manifest");
        assert_eq!(s, 201, "put manifest: {}", String::from_utf8_lossy(&b));
        sha256_digest(body)
    }

    /// GETs a manifest with the given Accept; returns the body.
    pub fn get_manifest(&self, repo: &str, reference: &str, accept: &str) -> Vec<u8> {
        let (s, _, b) = self
            .http(
                "GET",
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", accept)],
                b"",
            )
            .expect("get manifest");
        assert_eq!(s, 200, "get manifest: {}", String::from_utf8_lossy(&b));
        b
    }

    pub fn get_blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let (s, _, b) = self
            .http("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], b"")
            .expect("get blob");
        assert_eq!(s, 200, "get blob {digest}");
        b
    }
}

/// A throwaway CA (made with `openssl`) with a server certificate for IP 127.0.0.1 and a
/// client certificate, in a temp directory removed on drop.
pub struct TestPki {
    pub dir: PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestPki {
    pub fn new() -> TestPki {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!(
            "/var/tmp/berth-test-pki-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let pki = TestPki { dir };
        let d = &pki.dir;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ]);
        openssl(d, &ca);
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            ),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), ext).expect("write ext");
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let crt = format!("{name}.crt");
            let subj = format!("/CN=berth test {name}");
            let mut req = vec!["req"];
            req.extend(ec);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(d, &req);
            let ext = format!("{name}.ext");
            openssl(
                d,
                &[
                    "x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", &crt, "-days", "2", "-extfile", &ext,
                ],
            );
        }
        pki
    }

    /// Writes `<certs_dir>/<host>/` with the CA and, if asked, the client pair as
    /// `client.cert`/`client.key`.
    pub fn install(&self, certs_dir: &std::path::Path, host: &str, client: bool) {
        let h = certs_dir.join(host);
        std::fs::create_dir_all(&h).expect("certs.d host dir");
        std::fs::copy(self.dir.join("ca.crt"), h.join("ca.crt")).expect("copy ca.crt");
        if client {
            std::fs::copy(self.dir.join("client.crt"), h.join("client.cert"))
                .expect("copy client.cert");
            std::fs::copy(self.dir.join("client.key"), h.join("client.key"))
                .expect("copy client.key");
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn header(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// `sha256:<hex>` of bytes, via `sha256sum` so the harness needs no hashing crate.
pub fn sha256_digest(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(data).expect("write sha256sum");
    }
    let out = child.wait_with_output().expect("sha256sum output");
    let s = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", s.split_whitespace().next().expect("hash"))
}

/// A minimal HTTP/1.1 client (Content-Length or chunked responses, `Connection: close`).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpReply> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let hdrs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    if header(&hdrs, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(p) = rest[i..].windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[i..i + p]).trim(), 16)
                .unwrap_or(0);
            i += p + 2;
            if size == 0 || i + size > rest.len() {
                break;
            }
            out.extend_from_slice(&rest[i..i + size]);
            i += size + 2;
        }
        rest = out;
    }
    Ok((status, hdrs, rest))
}

/// A hand-rolled registry serving one image from memory, for what a real registry will not
/// do on demand: drop connections mid-blob (a registry dying mid-pull) and demand bearer
/// tokens from its own token endpoint (`/token`, basic credentials `user:password`).
pub struct FakeRegistry {
    pub port: u16,
    state: std::sync::Arc<FakeState>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub struct FakeState {
    /// `repo` this server answers for.
    pub repo: String,
    pub manifest: Vec<u8>,
    pub manifest_type: String,
    /// digest → bytes
    pub blobs: Vec<(String, Vec<u8>)>,
    /// When set, blob bodies stop halfway and the connection closes.
    pub truncate: std::sync::atomic::AtomicBool,
    /// `Some((user, password))`: bearer auth through `/token`.
    pub token_auth: Option<(String, String)>,
    /// GETs of blobs over 1 KiB (layers, not configs) served, truncated ones included.
    pub blob_gets: AtomicU32,
    /// How many more layer GETs to cut off halfway (on top of `truncate`).
    pub truncate_next: AtomicU32,
    /// Layer GETs that asked for a `Range` (a resumed download).
    pub range_gets: AtomicU32,
    /// When set, a `Range` is answered with the whole blob (200), as some registries do.
    pub ignore_range: std::sync::atomic::AtomicBool,
}

const FAKE_TOKEN: &str = "berth-test-token";

impl FakeRegistry {
    pub fn start(state: FakeState) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake registry");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = std::sync::Arc::new(state);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let st = st.clone();
                        std::thread::spawn(move || {
                            let _ = serve_fake(conn, &st, port);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeRegistry {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn state(&self) -> &FakeState {
        &self.state
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_fake(mut conn: TcpStream, st: &FakeState, port: u16) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = conn.read(&mut tmp)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf[0] == 0x16 {
            // A TLS ClientHello (berthd probing https first): plain HTTP only here.
            return Ok(());
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let path = target.split('?').next().unwrap_or("").to_string();
    let reply = |conn: &mut TcpStream, status: &str, hdrs: &[(&str, String)], body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in hdrs {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        r.push_str("\r\n");
        conn.write_all(r.as_bytes())?;
        if method != "HEAD" {
            conn.write_all(body)?;
        }
        conn.flush()
    };
    let unauthorized =
        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    if let Some((user, pw)) = &st.token_auth {
        let challenge =
            format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake-registry\"");
        if path == "/token" {
            use base64_lite::encode;
            let want = format!("Basic {}", encode(format!("{user}:{pw}").as_bytes()));
            if header(&headers, "authorization").as_deref() == Some(want.as_str())
                && target.contains("service=fake-registry")
            {
                return reply(
                    &mut conn,
                    "200 OK",
                    &[("Content-Type", "application/json".into())],
                    format!("{{\"token\":\"{FAKE_TOKEN}\"}}").as_bytes(),
                );
            }
            return reply(
                &mut conn,
                "401 Unauthorized",
                &[("Content-Type", "application/json".into())],
                br#"{"details":"incorrect username or password"}"#,
            );
        }
        if header(&headers, "authorization").as_deref() != Some(&format!("Bearer {FAKE_TOKEN}")) {
            return reply(
                &mut conn,
                "401 Unauthorized",
                &[
                    ("WWW-Authenticate", challenge),
                    ("Content-Type", "application/json".into()),
                ],
                unauthorized,
            );
        }
    }
    if path == "/v2/" {
        return reply(&mut conn, "200 OK", &[], b"{}");
    }
    if path == "/v1/search" {
        // The legacy search API, answering with the one repository served.
        let body = format!(
            "{{\"num_results\":1,\"query\":\"x\",\"results\":[{{\"name\":\"{}\",\"description\":\"a test image\",\"star_count\":7,\"is_official\":false,\"is_automated\":false}}]}}",
            st.repo
        );
        return reply(
            &mut conn,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
        );
    }
    let prefix = format!("/v2/{}/", st.repo);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return reply(&mut conn, "404 Not Found", &[], b"");
    };
    if rest.starts_with("manifests/") {
        return reply(
            &mut conn,
            "200 OK",
            &[("Content-Type", st.manifest_type.clone())],
            &st.manifest,
        );
    }
    if let Some(d) = rest.strip_prefix("blobs/") {
        let Some((_, data)) = st.blobs.iter().find(|(k, _)| k == d) else {
            return reply(&mut conn, "404 Not Found", &[], b"");
        };
        if data.len() > 1024 {
            st.blob_gets.fetch_add(1, Ordering::SeqCst);
        }
        let cut_once = data.len() > 1024
            && st
                .truncate_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if data.len() > 1024 && header(&headers, "range").is_some() {
            st.range_gets.fetch_add(1, Ordering::SeqCst);
        }
        if (cut_once || st.truncate.load(Ordering::SeqCst)) && data.len() > 1024 {
            // Promise everything, send half, hang up: a registry dying mid-blob.
            let r = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                data.len()
            );
            conn.write_all(r.as_bytes())?;
            conn.write_all(&data[..data.len() / 2])?;
            conn.flush()?;
            return conn.shutdown(std::net::Shutdown::Both);
        }
        if let Some(range) =
            header(&headers, "range").filter(|_| !st.ignore_range.load(Ordering::SeqCst))
        {
            if let Some(start) = range
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|s| *s < data.len())
            {
                return reply(
                    &mut conn,
                    "206 Partial Content",
                    &[(
                        "Content-Range",
                        format!("bytes {start}-{}/{}", data.len() - 1, data.len()),
                    )],
                    &data[start..],
                );
            }
        }
        return reply(&mut conn, "200 OK", &[], data);
    }
    reply(&mut conn, "404 Not Found", &[], b"")
}

/// Standard base64 without a crate (the harness keeps its dependencies minimal).
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(data: &[u8]) -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn encodes() {
        assert_eq!(encode(b"alice:s3cret-pw"), "YWxpY2U6czNjcmV0LXB3");
        assert_eq!(encode(b"ab"), "YWI=");
    }
}

/// `cmd args` with `input` on its stdin (`gzip -dc`, `zstd -c` …): its stdout.
pub fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("output");
    writer.join().expect("writer").expect("write");
    assert!(out.status.success(), "{cmd} failed");
    out.stdout
}

/// A pushed one-layer image `repo:1`: its config and its layer's uncompressed tar.
pub fn pushed_parts(reg: &TestRegistry, repo: &str) -> (serde_json::Value, Vec<u8>) {
    let m: serde_json::Value =
        serde_json::from_slice(&reg.get_manifest(repo, "1", DOCKER_MANIFEST)).expect("manifest");
    let config: serde_json::Value = serde_json::from_slice(
        &reg.get_blob(repo, m["config"]["digest"].as_str().expect("config digest")),
    )
    .expect("config");
    let gz = reg.get_blob(repo, m["layers"][0]["digest"].as_str().expect("layer"));
    (config, pipe("gzip", &["-dc"], &gz))
}

// Images through a berthd and a registry, for the registry test files.

/// `docker image inspect -f <fmt> <image>`, trimmed.
pub fn image_inspect(d: &Daemon, fmt: &str, image: &str) -> String {
    let out = d.docker(&["image", "inspect", "-f", fmt, image]);
    assert_ok(&out, "docker image inspect");
    stdout(&out).trim().to_string()
}

/// Loads busybox, tags it into the registry and pushes it with the docker CLI; returns the
/// reference and the pushed manifest digest.
pub fn push_busybox(d: &Daemon, reg: &TestRegistry, repo: &str) -> (String, String) {
    d.load_busybox();
    let image = format!("{}/{repo}:1", reg.addr());
    assert_ok(&d.docker(&["tag", "busybox", &image]), "docker tag");
    let out = d.docker(&["push", &image]);
    assert_ok(&out, "docker push");
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "The push refers to repository [{}/{repo}]",
            reg.addr()
        )),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("1: digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in {text}"));
    let digest = line.split_whitespace().nth(2).expect("digest").to_string();
    assert!(line.ends_with(&format!(
        "size: {}",
        reg.get_manifest(repo, "1", DOCKER_MANIFEST).len()
    )));
    (image, digest)
}

/// An image served by a [`FakeRegistry`]: the busybox the real registry got from a push.
pub fn fake_state(reg: &TestRegistry, repo: &str, token: Option<(&str, &str)>) -> FakeState {
    let manifest = reg.get_manifest(repo, "1", DOCKER_MANIFEST);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut blobs = Vec::new();
    for d in [&m["config"]["digest"], &m["layers"][0]["digest"]] {
        let d = d.as_str().unwrap().to_string();
        blobs.push((d.clone(), reg.get_blob(repo, &d)));
    }
    FakeState {
        repo: repo.to_string(),
        manifest,
        manifest_type: DOCKER_MANIFEST.to_string(),
        blobs,
        truncate: std::sync::atomic::AtomicBool::new(false),
        token_auth: token.map(|(u, p)| (u.to_string(), p.to_string())),
        blob_gets: std::sync::atomic::AtomicU32::new(0),
        truncate_next: std::sync::atomic::AtomicU32::new(0),
        range_gets: std::sync::atomic::AtomicU32::new(0),
        ignore_range: std::sync::atomic::AtomicBool::new(false),
    }
}

/// Tags busybox as `<addr>/<repo>:1` and pushes it with the docker CLI (no direct registry
/// reads, so it works against HTTPS registries too).
pub fn push_busybox_plain(d: &Daemon, addr: &str, repo: &str) -> String {
    d.load_busybox();
    let image = format!("{addr}/{repo}:1");
    assert_ok(&d.docker(&["tag", "busybox", &image]), "docker tag");
    let out = d.docker(&["push", &image]);
    assert_ok(&out, "docker push");
    assert!(
        stdout(&out).contains("1: digest: sha256:"),
        "{}",
        stdout(&out)
    );
    image
}

/// rmi, pull, run: the image made the round trip.
pub fn rmi_pull_run(d: &Daemon, image: &str) {
    let id = image_inspect(d, "{{.Id}}", image);
    assert_ok(&d.docker(&["rmi", image, "busybox"]), "docker rmi");
    let out = d.docker(&["pull", image]);
    assert_ok(&out, "docker pull");
    assert!(stdout(&out).contains("Pull complete"), "{}", stdout(&out));
    assert_eq!(
        image_inspect(d, "{{.Id}}", image),
        id,
        "same image after pull"
    );
    let out = d.docker(&["run", "--rm", image, "echo", "round trip"]);
    assert_ok(&out, "docker run pulled image");
    assert_eq!(stdout(&out), "round trip\n");
}
