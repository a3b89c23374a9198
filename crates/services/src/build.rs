//! Image builds from a context (`docker build`) and the build cache.

use std::collections::BTreeMap;

use async_trait::async_trait;
use berth_api_types::container;

use crate::{not_supported_by_daemon, ByteStream, Result};

/// `POST /build` query parameters.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (`dockerfile=`).
    pub dockerfile: String,
    /// `t=` (repeated).
    pub tags: Vec<String>,
    /// `buildargs=` (JSON object; a null value means "take it from the environment").
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    pub rm: bool,
    pub force_rm: bool,
    pub quiet: bool,
    /// `remote=`: a URL context (not supported).
    pub remote: String,
    /// `cachefrom=` (JSON array of image names).
    pub cache_from: Vec<String>,
    /// The host configuration of RUN steps' containers, from `networkmode=` (empty: the
    /// default bridge, as Docker), `extrahosts=`, `shmsize=`, `memory=`, `memswap=`,
    /// `cpushares=`, `cpuperiod=`, `cpuquota=`, `cpusetcpus=`, `cpusetmems=`, `cgroupparent=`
    /// and `ulimits=` (dockerd's `hostConfigFromOptions`).
    pub step_host: container::HostConfig,
    /// berth extension, `secret=` (repeated): `id=ID,src=PATH|env=VAR|data=BASE64`.
    pub secrets: Vec<String>,
    /// berth extension, `ssh=` (repeated): `ID=SOCKET` (an SSH agent socket on the daemon's host).
    pub ssh: Vec<String>,
    /// berth extension, `buildcontext=` (repeated): `NAME=docker-image://REF`, or `NAME=local`
    /// for a directory sent inside the context tar under `.berth-build-contexts/NAME/`.
    pub build_contexts: Vec<String>,
    /// `outputs=` (JSON `[{"Type":"local"|"tar"}]`): stream the final stage's files as a
    /// tar instead of making an image (berth's answer to BuildKit's exporters).
    pub outputs: Vec<BuildOutput>,
}

/// One `outputs=` entry (keys in any case, by Go's rules).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct BuildOutput {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Attrs")]
    pub attrs: BTreeMap<String, String>,
}

#[async_trait]
pub trait BuildBackend: Send + Sync + 'static {
    /// `POST /build`: the context tar in, newline-delimited JSON progress out.
    async fn image_build(&self, _body: ByteStream, _opts: BuildOptions) -> Result<ByteStream> {
        Err(not_supported_by_daemon("build"))
    }
    /// `POST /build/prune`: drops the build cache; returns (removed entries, bytes freed).
    async fn build_prune(&self) -> Result<(Vec<String>, u64)> {
        Err(not_supported_by_daemon("build cache prune"))
    }
}
