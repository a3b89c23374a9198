//! Layers unpacked in two steps, so several can unpack at once: [`ImageStore::prepare_layer`]
//! unpacks a stream into a staging directory and keeps its tar (needs no parent: a layer's
//! directory does not depend on the layers below it), [`ImageStore::commit_layer`] names it
//! by its chain id once the parent is in place. Dropping a [`PreparedLayer`] removes it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};

use super::{create_dir_all, decompress, fsync_dir, ImageStore, TeeReader};
use crate::digest::{child_chain_id, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::store::LayerInfo;
use crate::unpack::{unpack, UnpackOptions};

/// An unpacked layer not yet in the layer store.
pub struct PreparedLayer {
    work: tempfile::TempDir,
    tar: tempfile::NamedTempFile,
    diff_id: Digest,
    size: u64,
}

impl PreparedLayer {
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }
}

impl ImageStore {
    /// Unpacks a (possibly compressed) layer stream into staging, failing when its diff id
    /// is not `expected_diff_id`.
    pub fn prepare_layer(
        &self,
        reader: impl io::Read,
        expected_diff_id: Option<&Digest>,
    ) -> Result<PreparedLayer> {
        let work = self.temp_dir()?;
        let diff = work.path().join("diff");
        create_dir_all(&diff)?;
        let tar = tempfile::NamedTempFile::new_in(work.path())
            .map_err(|e| Error::io("create temp file in", work.path(), e))?;
        let tar_file = tar
            .as_file()
            .try_clone()
            .map_err(|e| Error::io("dup", tar.path(), e))?;
        let mut hashed = HashingReader::new(TeeReader {
            inner: decompress(reader)?,
            out: BufWriter::new(tar_file),
        });
        let stats = unpack(&mut hashed, &diff, UnpackOptions::LAYER)?;
        // The diff id covers the whole stream, including the end-of-archive blocks and
        // any padding after them.
        io::copy(&mut hashed, &mut io::sink()).map_err(|e| Error::Tar {
            context: "reading end of layer".into(),
            source: e,
        })?;
        let (diff_id, _, tee) = hashed.finish();
        tee.out
            .into_inner()
            .map_err(|e| Error::io("write layer tar", tar.path(), e.into_error()))?;
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
            tar,
            diff_id,
            size: stats.size,
        })
    }

    /// Registers a prepared layer on top of `parent` (which must exist).
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
        self.commit_blob_file(p.tar, &p.diff_id)?;
        if self.has_layer(&chain_id) {
            return self.layer_info(&chain_id);
        }
        let info = LayerInfo {
            diff_id: p.diff_id,
            chain_id: chain_id.clone(),
            parent: parent.cloned(),
            size: p.size,
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
