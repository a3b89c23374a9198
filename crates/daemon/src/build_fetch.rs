//! `ADD <url>`: downloads for builds, with the daemon's proxy settings (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY` in its environment, which `docker info` shows), as dockerd's
//! legacy builder does.

use std::path::Path;

use berth_builder::Fetched;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Downloads `url` into `dir/download`.
pub(crate) async fn fetch(url: &str, dir: &Path) -> Result<Fetched, String> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("failed to GET {url}: {e}"))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("failed to GET {url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        return Err(format!(
            "failed to GET {url} with status {status}: {}",
            body.trim()
        ));
    }
    let modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    let path = dir.join("download");
    let mut f = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("failed to GET {url}: {e}"))?;
        f.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    f.flush().await.map_err(|e| e.to_string())?;
    Ok(Fetched { path, modified })
}
