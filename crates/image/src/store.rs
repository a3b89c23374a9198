//! On-disk content store (sha256 blobs) and layer store (unpacked layer directories).
//!
//! Layout under the store root (the daemon uses `<data-root>/image`):
//! ```text
//! blobs/sha256/<hex>            content-addressed blobs: configs, manifests, and the
//!                               tar of every layer: uncompressed, named by its diff id,
//!                               or (pulled layers) the compressed download, named by its
//!                               own digest and recorded in `layer.json` (`blob`)
//! layers/<chain-id hex>/diff/   the unpacked layer (overlayfs lowerdir)
//! layers/<chain-id hex>/layer.json  {"diff_id","chain_id","parent","size"[,"blob"]}
//! layers/empty/                 an always-empty lowerdir for images with no layers
//! tmp/                          staging area; same filesystem, so rename is atomic
//! ```
//! Every write lands in `tmp/` first, is fsynced, then renamed into place; a crash
//! leaves at most garbage in `tmp/`, which [`ImageStore::open`] clears.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};

mod layer_tar;
mod staged;
pub use layer_tar::{Compression, LayerBlob, LayerTar};
pub use staged::PreparedLayer;

/// Metadata of one unpacked layer (`layer.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// sha256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// OCI chain id of this layer and all layers below it; names the directory.
    pub chain_id: Digest,
    /// Chain id of the layer below, if any.
    pub parent: Option<Digest>,
    /// Sum of regular file sizes in this layer (Docker's layer size).
    pub size: u64,
    /// The compressed blob that keeps this layer's tar (a pulled layer's download); `None`:
    /// the uncompressed tar, named by the diff id. Read through
    /// [`ImageStore::open_layer_tar`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<LayerBlob>,
}

impl LayerInfo {
    /// The digest of the blob that keeps this layer's tar.
    pub fn blob_digest(&self) -> &Digest {
        self.blob.as_ref().map_or(&self.diff_id, |b| &b.digest)
    }
}

/// Content store + layer store rooted at one directory.
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
}

fn create_dir_all(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io("create directory", p, e))
}

fn fsync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", p, e))
}

/// Wrap a (possibly compressed) stream in the right decompressor, sniffing magic bytes:
/// gzip `1f 8b`, zstd `28 b5 2f fd`, xz `fd 37 7a 58 5a 00`, bzip2 `BZh`; anything else
/// is passed through as a plain tar.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> Result<Box<dyn Read + 'a>> {
    Ok(decompress_sniffed(reader)?.1)
}

/// [`decompress`], also saying which compression it found.
pub fn decompress_sniffed<'a, R: Read + 'a>(
    mut reader: R,
) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Stream {
                    context: "reading layer stream".into(),
                    source: e,
                })
            }
        }
    }
    let kind = Compression::sniff(&head[..n]);
    let stream = io::Cursor::new(head).take(n as u64).chain(reader);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::new(stream).map_err(|e| Error::Stream {
                context: "starting zstd decoder".into(),
                source: e,
            })?;
            Box::new(d)
        }
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(stream)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(stream)),
        Compression::None => Box::new(stream),
    };
    Ok((kind, out))
}

/// Tees every byte read into a writer (the uncompressed layer tar kept as a blob).
struct TeeReader<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl ImageStore {
    /// Open (creating if needed) a store rooted at `root`, clearing stale temp files.
    /// Open one store per root per process (at daemon start): opening clears `tmp/`,
    /// which would break another instance's in-flight writes. Clones share the root.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let s = ImageStore { root: root.into() };
        create_dir_all(&s.root.join("blobs/sha256"))?;
        create_dir_all(&s.root.join("layers"))?;
        let tmp = s.tmp_dir();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io("clear", &tmp, e))?;
        }
        create_dir_all(&tmp)?;
        create_dir_all(&s.empty_layer_dir())?;
        Ok(s)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Staging directory on the same filesystem as the store.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh temp directory under the store (removed when dropped).
    pub fn temp_dir(&self) -> Result<tempfile::TempDir> {
        let tmp = self.tmp_dir();
        tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(&tmp)
            .map_err(|e| Error::io("create temp directory in", tmp, e))
    }

    // ---------------------------------------------------------------- blobs

    /// Path of the blob with this digest (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob exists.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Store bytes; returns their digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let (d, _) = self.put_blob_inner(data, None)?;
        Ok(d)
    }

    /// Store a stream; returns (digest, size).
    pub fn put_blob_reader(&self, reader: impl Read) -> Result<(Digest, u64)> {
        self.put_blob_inner(reader, None)
    }

    /// Store a stream that must hash to `expected`; on mismatch nothing is stored.
    pub fn put_blob_expected(&self, reader: impl Read, expected: &Digest) -> Result<u64> {
        Ok(self.put_blob_inner(reader, Some(expected))?.1)
    }

    fn put_blob_inner(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let tmp = self.tmp_dir();
        let file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(|e| Error::io("create temp file in", &tmp, e))?;
        let mut w = HashingWriter::new(BufWriter::new(file));
        io::copy(&mut reader, &mut w).map_err(|e| Error::Stream {
            context: "writing blob".into(),
            source: e,
        })?;
        let (digest, size, buf) = w.finish();
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: exp.clone(),
                    actual: digest,
                });
            }
        }
        let file = buf
            .into_inner()
            .map_err(|e| Error::io("flush", &tmp, e.into_error()))?;
        self.commit_blob_file(file, &digest)?;
        Ok((digest, size))
    }

    /// fsync a finished temp file and rename it to its blob path (no-op if present).
    fn commit_blob_file(&self, file: tempfile::NamedTempFile, digest: &Digest) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        file.as_file()
            .sync_all()
            .map_err(|e| Error::io("fsync", file.path(), e))?;
        self.persist_blob(file, digest)
    }

    /// Rename a finished temp file, already fsynced, to its blob path (no-op if present).
    fn persist_blob(&self, file: tempfile::NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(());
        }
        file.persist(&dest)
            .map_err(|e| Error::io("rename blob to", &dest, e.error))?;
        fsync_dir(&self.root.join("blobs/sha256"))
    }

    /// Read a whole blob.
    pub fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(|e| self.blob_err(digest, &p, e))
    }

    /// Open a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| self.blob_err(digest, &p, e))
    }

    /// Size of a blob in bytes.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let p = self.blob_path(digest);
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| self.blob_err(digest, &p, e))
    }

    /// Delete a blob; deleting a missing blob is not an error.
    pub fn delete_blob(&self, digest: &Digest) -> Result<()> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", p, e)),
        }
    }

    fn blob_err(&self, digest: &Digest, p: &Path, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            Error::BlobNotFound(digest.clone())
        } else {
            Error::io("read blob", p, e)
        }
    }

    // --------------------------------------------------------------- layers

    fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// The unpacked directory of a layer (its overlay lowerdir).
    pub fn layer_diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    /// The init layer every container of an image whose top layer is `chain_id` shares (made
    /// by the daemon; removed with the layer).
    pub fn init_layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join("init")
    }

    /// An empty directory usable as the single lowerdir of an image with no layers.
    pub fn empty_layer_dir(&self) -> PathBuf {
        self.root.join("layers/empty")
    }

    /// Whether a layer with this chain id is unpacked.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_dir(chain_id).join("layer.json").is_file()
    }

    /// Metadata of an unpacked layer.
    pub fn layer_info(&self, chain_id: &Digest) -> Result<LayerInfo> {
        let p = self.layer_dir(chain_id).join("layer.json");
        let bytes = fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::LayerNotFound(chain_id.clone())
            } else {
                Error::io("read", &p, e)
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(p.display().to_string(), e))
    }

    /// Every unpacked layer.
    pub fn list_layers(&self) -> Result<Vec<LayerInfo>> {
        let dir = self.root.join("layers");
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))? {
            let ent = ent.map_err(|e| Error::io("read directory", &dir, e))?;
            let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Ok(chain) = Digest::from_hex(&name) {
                if let Ok(info) = self.layer_info(&chain) {
                    out.push(info);
                }
            }
        }
        Ok(out)
    }

    /// Unpack a layer (any of gzip/zstd/xz/bzip2/plain tar) on top of `parent` (a chain
    /// id). The diff id is computed over the uncompressed stream while unpacking, the
    /// uncompressed tar is kept as the blob named by the diff id, and the layer
    /// directory is renamed into place atomically. If the chain id already exists the
    /// fresh copy is discarded, so each layer is unpacked once.
    pub fn apply_layer(&self, parent: Option<&Digest>, reader: impl Read) -> Result<LayerInfo> {
        self.apply_layer_expect(parent, reader, None)
    }

    /// [`apply_layer`](Self::apply_layer), failing without registering anything when the
    /// diff id is not `expected_diff_id`.
    pub fn apply_layer_expect(
        &self,
        parent: Option<&Digest>,
        reader: impl Read,
        expected_diff_id: Option<&Digest>,
    ) -> Result<LayerInfo> {
        // commit_layer checks this too; checking first spares unpacking for nothing.
        if let Some(p) = parent {
            if !self.has_layer(p) {
                return Err(Error::LayerNotFound(p.clone()));
            }
        }
        let prepared = self.prepare_layer(reader, expected_diff_id)?;
        self.commit_layer(parent, prepared)
    }

    /// Unpacked directories of a layer stack, top-most first (overlay lowerdir order),
    /// following `parent` links from `top`.
    pub fn lower_dirs(&self, top: &Digest) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut cur = Some(top.clone());
        while let Some(c) = cur {
            let info = self.layer_info(&c)?;
            out.push(self.layer_diff_dir(&c));
            cur = info.parent;
            if out.len() > 4096 {
                return Err(Error::InvalidArchive(format!("layer chain of {top} loops")));
            }
        }
        Ok(out)
    }

    /// Remove an unpacked layer. The blob that keeps its tar (the uncompressed tar named by
    /// its diff id, or its compressed download) is removed too unless another layer still
    /// keeps its tar in the same blob. Removing a missing layer is not an
    /// error. The caller must make sure no image or container still uses it.
    pub fn remove_layer(&self, chain_id: &Digest) -> Result<()> {
        let dir = self.layer_dir(chain_id);
        let info = match self.layer_info(chain_id) {
            Ok(i) => Some(i),
            Err(Error::LayerNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        if dir.exists() {
            // Rename first so a half-deleted tree is never visible under its name.
            let work = self.temp_dir()?;
            let doomed = work.path().join("layer");
            fs::rename(&dir, &doomed).map_err(|e| Error::io("remove layer", &dir, e))?;
            drop(work);
        }
        if let Some(info) = info {
            let blob = info.blob_digest();
            let still_used = self.list_layers()?.iter().any(|l| l.blob_digest() == blob);
            if !still_used {
                self.delete_blob(blob)?;
            }
        }
        Ok(())
    }
}
