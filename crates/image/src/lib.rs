//! # berth-image
//!
//! Images on disk for berth: references, digests, image configs, the content store,
//! the layer store, safe tar unpacking, `docker load`/`save`/`import` archives and
//! overlayfs mounts. A pure library: the daemon keeps image records and tags in its
//! database; this crate keeps files under one directory (`<data-root>/image`).
//!
//! ## Modules and public API
//!
//! - [`reference`] — Docker references, normalised like distribution/reference:
//!   `Reference::parse(&str) -> Result<Reference>` (adds `latest` when there is neither
//!   tag nor digest), `Reference::parse_named` (no default tag), `domain()`, `path()`,
//!   `tag() -> Option<&str>`, `digest() -> Option<&Digest>`, `full_name()`
//!   (`docker.io/library/busybox`), `familiar_name()` (`busybox`), `to_string()`
//!   (`docker.io/library/busybox:latest`), `familiar_string()` (`busybox:latest`),
//!   `with_default_tag()`, `with_tag()`, `with_digest()`, `repository()`;
//!   `is_valid_tag`, `id_prefix(&str) -> Option<&str>`, `looks_like_id(&str) -> bool`.
//! - [`digest`] — [`Digest`] (`sha256:<64 hex>`): `parse`, `from_hex`, `sha256_of`,
//!   `hex()`, `short_id()`; [`digest::HashingReader`] / [`digest::HashingWriter`]
//!   (sha256 + byte count while streaming); `chain_id(&[Digest]) -> Option<Digest>`,
//!   `chain_ids`, `child_chain_id`.
//! - [`config`] — [`ImageConfig`] and friends (`ContainerConfig` with Docker's
//!   capitalised keys, `RootFs`, `History`, `HealthConfig`, `StrSlice`); unknown keys
//!   kept in `extra` maps so nothing is lost on a round trip; `host_platform()`.
//! - [`store`] — [`ImageStore`]:
//!   - content store: `put_blob(&[u8]) -> Digest`, `put_blob_reader(impl Read) ->
//!     (Digest, u64)`, `put_blob_expected(impl Read, &Digest) -> u64`, `get_blob`,
//!     `open_blob`, `has_blob`, `blob_size`, `delete_blob`, `blob_path`;
//!   - layer store: `apply_layer(Option<&Digest /*parent chain id*/>, impl Read) ->
//!     LayerInfo`, `apply_layer_expect(.., Option<&Digest /*diff id*/>)`, `layer_info`,
//!     `has_layer`, `list_layers`, `lower_dirs(&chain_id) -> Vec<PathBuf>` (top-most
//!     first), `layer_diff_dir`, `remove_layer`, `empty_layer_dir()`;
//!     `prepare_layer` / `prepare_layer_without_tar` (+ `PreparedLayer::keep_blob`, a
//!     pulled layer's download) then `commit_layer`, to unpack several layers at once;
//!     `decompress(impl Read)` sniffs gzip/zstd/xz/bzip2;
//!   - a layer's tar, in whichever blob keeps it: `layer_blob(&chain_id, &diff_id) -> LayerBlob`
//!     (`digest`, `compression`, `tar_size`), `open_layer_tar(&chain_id, &diff_id) -> LayerTar` (the
//!     uncompressed tar as a stream, decompressed on the fly) — the one way to read it.
//! - [`unpack`] — the hostile-tarball extractor used for layers and archives (rules in
//!   its module docs); `unpack(&mut impl Read, &Path, UnpackOptions) -> UnpackStats`.
//! - [`archive`] — `load(impl Read, &ImageStore, &mut dyn FnMut(LoadEvent)) ->
//!   Vec<LoadedImage>` (legacy and Docker 25+ `docker save`, OCI layout),
//!   `save(&[SaveItem], &ImageStore, impl Write)` (Docker 25+ combined layout),
//!   `import(impl Read, &[String] /*changes*/, &str /*message*/, &ImageStore) ->
//!   LoadedImage`, `apply_changes(&mut ContainerConfig, &[String])`.
//! - [`diff`] — an overlay upper directory as a layer tar (`write_layer_tar`, whiteouts as
//!   `.wh.` files) and as `docker diff` changes (`changes`).
//! - [`oci`] — the OCI types archives and the registry client share: [`oci::Descriptor`],
//!   [`oci::Platform`] (`parse` of `--platform`, `host()`, `matches`), `media_types`.
//! - [`overlay`] — the kernel-facing part: `mount_overlay(&[PathBuf], upper, work,
//!   target)`, `unmount(target)` (`MNT_DETACH`), `overlay_options`; `use_copies()` turns
//!   every overlay into a copy of its layers ([`copyfs`], dockerd's `vfs`), whose upper
//!   directory `refresh_upper(target, upper)` brings up to date before it is read.
//!
//! ## On-disk layout (under the store root)
//!
//! ```text
//! blobs/sha256/<hex>               configs, manifests, layer tars: uncompressed (by diff id)
//!                                  or a pulled layer's compressed download (by its digest)
//! layers/<chain-id hex>/diff/      unpacked layer, overlay lowerdir
//! layers/<chain-id hex>/layer.json {"diff_id","chain_id","parent","size"[,"blob"]}
//! layers/empty/                    lowerdir for images with no layers
//! tmp/                             staging; cleared by ImageStore::open
//! ```
//!
//! ## Invariants
//!
//! - Writes go to `tmp/`, are fsynced and renamed into place, so a name in `blobs/` or
//!   `layers/` always refers to complete, verified content.
//! - A layer is unpacked once per chain id; applying it again only re-hashes the stream.
//! - The tar of each layer is kept so `save` can reproduce it byte for byte and image ids
//!   survive save → load: uncompressed, named by its diff id (loaded, built, committed,
//!   imported layers), or, for a pulled layer, as its verified compressed download, named
//!   by its own digest and recorded in the layer's `layer.json` (`blob`: digest,
//!   compression, tar size) — not written a second time uncompressed.
//! - Whiteouts are stored in overlayfs form (0/0 char devices,
//!   `trusted.overlay.opaque=y`); converting back to `.wh.` files on diff/export is the
//!   job of whoever produces tars from an upper directory.
//! - Errors are [`Error`]: lowercase messages with the path or digest involved.
//!
//! ## Example
//!
//! ```no_run
//! use berth_image::{archive, ImageStore};
//! # fn main() -> berth_image::Result<()> {
//! let store = ImageStore::open("/var/lib/berth/image")?;
//! let file = std::fs::File::open("busybox.tar").expect("archive");
//! for img in archive::load(file, &store, &mut |ev| eprintln!("{ev:?}"))? {
//!     let top = img.top_layer().cloned();
//!     let lowers = match top {
//!         Some(t) => store.lower_dirs(&t)?,
//!         None => vec![store.empty_layer_dir()],
//!     };
//!     println!("{} {:?} {} layers", img.id, img.repo_tags, lowers.len());
//! }
//! # Ok(())
//! # }
//! ```

pub mod archive;
pub mod config;
pub mod copyfs;
pub mod diff;
pub mod digest;
pub mod error;
pub mod inroot;
pub mod oci;
pub mod overlay;
pub mod reference;
pub mod store;
pub mod unpack;
pub mod userns;

pub use archive::{LoadEvent, LoadedImage, SaveItem};
pub use config::ImageConfig;
pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use store::{ImageStore, LayerInfo};

#[cfg(test)]
mod archive_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod testutil;
