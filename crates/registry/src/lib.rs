//! # berth-registry
//!
//! The OCI distribution client: pull images into, and push them from, berth's image store.
//!
//! - [`config`] — [`RegistryConfig`] (insecure registries, mirrors); Docker Hub's API host.
//! - [`auth`] — [`AuthConfig`] (the `X-Registry-Auth` JSON), `WWW-Authenticate` parsing.
//! - [`client`] — [`Client`] (scheme choice, login) and [`Repository`] (an authenticated
//!   session: manifests, blobs, uploads, tags). Auth follows the registry's challenge on
//!   `GET /v2/`: none, basic credentials, or a bearer token fetched from the realm.
//! - [`manifest`] — Docker schema 2 and OCI manifests and indexes; `--platform` selection.
//! - [`pull`] — `resolve` a reference to a manifest, `pull_image` its blobs into the store
//!   (bounded parallel downloads, digest verification, in-order extraction, retries with
//!   range resume, cleanup on failure).
//! - [`push`] — `push_image`: layers (reused, mounted or gzip-compressed and uploaded),
//!   config, manifest.
//! - [`tls`] — trust for secure registries: system roots plus `certs.d/<host>/` CAs and
//!   client certificates.
//! - [`cache`] — which compressed blobs each layer was pulled from or pushed as.
//! - [`progress`] — Docker-vocabulary progress events.
//!
//! reqwest is used directly rather than oci-client: the pipelines need the raw byte stream
//! of each blob (hash and write while counting for progress, resume with `Range`) and
//! streamed uploads with progress, and the daemon passes credentials per request.

pub mod auth;
pub mod cache;
pub mod client;
pub mod config;
pub mod error;
mod follow;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod tls;

pub use auth::AuthConfig;
pub use cache::DistributionCache;
pub use client::{Client, Repository};
pub use config::RegistryConfig;
pub use error::{Error, Result};
pub use manifest::Platform;
pub use progress::{ProgressEvent, ProgressFn};
