//! `ADD <url>`: downloads for builds, with the daemon's proxy settings (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY` in its environment, which `docker info` shows), as dockerd's
//! legacy builder does.

use std::path::{Path, PathBuf};

use berth_builder::Fetched;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Why an `ADD <url>` download failed; the build's error message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("failed to GET {url}: {source}")]
    Get { url: String, source: reqwest::Error },
    /// The server's answer was not a success; `body` is the start of what it said.
    #[error("failed to GET {url} with status {status}: {body}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Flush(std::io::Error),
}

/// Downloads `url` into `dir/download`.
pub(crate) async fn fetch(url: &str, dir: &Path) -> Result<Fetched, FetchError> {
    let get = |source| FetchError::Get {
        url: url.to_string(),
        source,
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(get)?;
    let resp = client.get(url).send().await.map_err(get)?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        return Err(FetchError::Status {
            url: url.to_string(),
            status,
            body: body.trim().to_string(),
        });
    }
    let modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    let path = dir.join("download");
    let write = |source| FetchError::Write {
        path: path.clone(),
        source,
    };
    let mut f = tokio::fs::File::create(&path).await.map_err(write)?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(get)?;
        f.write_all(&chunk).await.map_err(write)?;
    }
    f.flush().await.map_err(FetchError::Flush)?;
    Ok(Fetched { path, modified })
}
