//! Layers unpacked in two steps, so several can unpack at once: [`ImageStore::prepare_layer`]
//! unpacks a stream into a staging directory and keeps its tar (needs no parent: a layer's
//! directory does not depend on the layers below it), [`ImageStore::commit_layer`] names it
//! by its chain id once the parent is in place. Dropping a [`PreparedLayer`] removes it.
//!
//! A pulled layer keeps its compressed download instead of its tar:
//! [`ImageStore::prepare_layer_without_tar`] unpacks without a copy of the tar, and
//! [`PreparedLayer::keep_blob`] hands it the verified download to commit as the layer's blob.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use super::{create_dir_all, decompress_sniffed, fsync_dir, ImageStore, TeeReader};
use crate::digest::{child_chain_id, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::store::{Compression, LayerBlob, LayerInfo};
use crate::unpack::{unpack, UnpackOptions, UnpackStats};

/// What a prepared layer keeps as its blob.
enum Kept {
    /// The uncompressed tar, teed while unpacking (named by the diff id).
    Tar(tempfile::NamedTempFile),
    /// Nothing yet: [`PreparedLayer::keep_blob`] must give it its download.
    Pending,
    /// The (compressed) download the layer was unpacked from, fsynced, and its digest.
    Blob(tempfile::NamedTempFile, Digest),
}

/// An unpacked layer not yet in the layer store.
pub struct PreparedLayer {
    work: tempfile::TempDir,
    kept: Kept,
    diff_id: Digest,
    size: u64,
    /// How the stream it was unpacked from was compressed.
    compression: Compression,
    /// Bytes of its uncompressed tar.
    tar_size: u64,
}

impl PreparedLayer {
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// Keeps `file` (a temp file in the store's `tmp/`, holding exactly the verified stream
    /// this layer was unpacked from, whose sha256 is `digest`) as the layer's blob, for a
    /// layer prepared by [`ImageStore::prepare_layer_without_tar`]. Syncs it to disk here, so
    /// that layers prepared at once sync at once; [`ImageStore::commit_layer`] renames it.
    pub fn keep_blob(&mut self, file: tempfile::NamedTempFile, digest: Digest) -> Result<()> {
        file.as_file()
            .sync_all()
            .map_err(|e| Error::io("fsync", file.path(), e))?;
        self.kept = Kept::Blob(file, digest);
        Ok(())
    }
}

/// Unpacks the (decompressed) layer stream `reader` into `diff`, hashing it to the end;
/// returns (diff id, tar size, what the unpack did, the reader).
fn unpack_hashed<R: Read>(reader: R, diff: &Path) -> Result<(Digest, u64, UnpackStats, R)> {
    let mut hashed = HashingReader::new(reader);
    let stats = unpack(&mut hashed, diff, UnpackOptions::LAYER)?;
    // The diff id covers the whole stream, including the end-of-archive blocks and
    // any padding after them.
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| Error::Tar {
        context: "reading end of layer".into(),
        source: e,
    })?;
    let (diff_id, tar_size, reader) = hashed.finish();
    Ok((diff_id, tar_size, stats, reader))
}

impl ImageStore {
    /// Unpacks a (possibly compressed) layer stream into staging, keeping its uncompressed
    /// tar, failing when its diff id is not `expected_diff_id`.
    pub fn prepare_layer(
        &self,
        reader: impl io::Read,
        expected_diff_id: Option<&Digest>,
    ) -> Result<PreparedLayer> {
        self.prepare(reader, expected_diff_id, true)
    }

    /// [`prepare_layer`](Self::prepare_layer) without a copy of the tar: the caller keeps the
    /// stream it read (a download) and gives it to [`PreparedLayer::keep_blob`] before the
    /// commit.
    pub fn prepare_layer_without_tar(
        &self,
        reader: impl io::Read,
        expected_diff_id: Option<&Digest>,
    ) -> Result<PreparedLayer> {
        self.prepare(reader, expected_diff_id, false)
    }

    fn prepare(
        &self,
        reader: impl io::Read,
        expected_diff_id: Option<&Digest>,
        keep_tar: bool,
    ) -> Result<PreparedLayer> {
        let work = self.temp_dir()?;
        let diff = work.path().join("diff");
        create_dir_all(&diff)?;
        let (compression, plain) = decompress_sniffed(reader)?;
        let (diff_id, tar_size, stats, kept) = if keep_tar {
            let tar = tempfile::NamedTempFile::new_in(work.path())
                .map_err(|e| Error::io("create temp file in", work.path(), e))?;
            let tar_file = tar
                .as_file()
                .try_clone()
                .map_err(|e| Error::io("dup", tar.path(), e))?;
            let tee = TeeReader {
                inner: plain,
                out: BufWriter::new(tar_file),
            };
            let (diff_id, tar_size, stats, tee) = unpack_hashed(tee, &diff)?;
            tee.out
                .into_inner()
                .map_err(|e| Error::io("write layer tar", tar.path(), e.into_error()))?;
            (diff_id, tar_size, stats, Kept::Tar(tar))
        } else {
            let (diff_id, tar_size, stats, _) = unpack_hashed(plain, &diff)?;
            (diff_id, tar_size, stats, Kept::Pending)
        };
        if stats.skipped_devices > 0 {
            tracing::warn!(
                "layer {diff_id}: skipped {} device node(s)",
                stats.skipped_devices
            );
        }
        if let Some(exp) = expected_diff_id {
            if *exp != diff_id {
                return Err(Error::DigestMismatch {
                    what: "layer diff id".into(),
                    expected: exp.clone(),
                    actual: diff_id,
                });
            }
        }
        Ok(PreparedLayer {
            work,
            kept,
            diff_id,
            size: stats.size,
            compression,
            tar_size,
        })
    }

    /// Registers a prepared layer on top of `parent` (which must exist), with its blob: the
    /// uncompressed tar under the diff id, or the kept download under its own digest (unless
    /// the store holds the layer's uncompressed tar already, or the layer exists).
    pub fn commit_layer(&self, parent: Option<&Digest>, p: PreparedLayer) -> Result<LayerInfo> {
        if let Some(pc) = parent {
            if !self.has_layer(pc) {
                return Err(Error::LayerNotFound(pc.clone()));
            }
        }
        let chain_id = match parent {
            Some(pc) => child_chain_id(pc, &p.diff_id),
            None => p.diff_id.clone(),
        };
        let blob = match p.kept {
            Kept::Tar(tar) => {
                self.commit_blob_file(tar, &p.diff_id)?;
                None
            }
            Kept::Pending => {
                return Err(Error::InvalidArchive(format!(
                    "layer {} was prepared without its tar and given no blob to keep",
                    p.diff_id
                )))
            }
            // A download that is the plain tar is the diff id's blob.
            Kept::Blob(file, digest) if digest == p.diff_id => {
                self.persist_blob(file, &digest)?;
                None
            }
            Kept::Blob(..) if self.has_layer(&chain_id) || self.has_blob(&p.diff_id) => None,
            Kept::Blob(file, digest) => {
                self.persist_blob(file, &digest)?;
                Some(LayerBlob {
                    digest,
                    compression: p.compression,
                    tar_size: p.tar_size,
                })
            }
        };
        if self.has_layer(&chain_id) {
            return self.layer_info(&chain_id);
        }
        let info = LayerInfo {
            diff_id: p.diff_id,
            chain_id: chain_id.clone(),
            parent: parent.cloned(),
            size: p.size,
            blob,
        };
        let meta = p.work.path().join("layer.json");
        let json = serde_json::to_vec(&info).map_err(|e| Error::json("layer.json", e))?;
        {
            let mut f = File::create(&meta).map_err(|e| Error::io("create", &meta, e))?;
            f.write_all(&json)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io("write", &meta, e))?;
        }
        let work_path = p.work.keep();
        let dest = self.layer_dir(&chain_id);
        if let Err(e) = fs::rename(&work_path, &dest) {
            let _ = fs::remove_dir_all(&work_path);
            // Lost a race with a concurrent apply of the same layer: theirs is as good.
            if self.has_layer(&chain_id) {
                return self.layer_info(&chain_id);
            }
            return Err(Error::io("rename layer to", dest, e));
        }
        fsync_dir(&self.root.join("layers"))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, body: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn prepared_out_of_order_commit_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let (a, b) = (layer("a", b"1"), layer("b", b"22"));
        // The upper layer unpacks first; committing it before its parent fails.
        let pb = s
            .prepare_layer(&b[..], Some(&Digest::sha256_of(&b)))
            .unwrap();
        let pa = s.prepare_layer(&a[..], None).unwrap();
        let bad = s.prepare_layer(&a[..], Some(&Digest::sha256_of(b"x")));
        assert!(matches!(bad, Err(Error::DigestMismatch { .. })));
        let ia = s.commit_layer(None, pa).unwrap();
        let ib = s.commit_layer(Some(&ia.chain_id), pb).unwrap();
        assert_eq!(ib.parent.as_ref(), Some(&ia.chain_id));
        assert_eq!(s.lower_dirs(&ib.chain_id).unwrap().len(), 2);
        assert!(s.layer_diff_dir(&ib.chain_id).join("b").is_file());
        assert_eq!(s.get_blob(&ib.diff_id).unwrap(), b);
        // Nothing left in staging.
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }
}
