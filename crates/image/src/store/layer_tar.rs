//! A layer's tar, whichever blob the store keeps it in: the uncompressed tar named by its diff
//! id (layers loaded, built, committed or imported), or the compressed download named by its
//! own digest (pulled layers: keeping what is on disk already spares writing and syncing the
//! tar again, as containerd does). Everything that reads a layer's tar (`docker save`, push)
//! goes through [`ImageStore::layer_blob`] and [`ImageStore::open_layer_tar`].

use std::fs;
use std::io::{self, BufReader, Read};

use serde::{Deserialize, Serialize};

use super::{decompress, ImageStore};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// How a kept layer blob is compressed (sniffed from its first bytes when it was unpacked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// The compression whose magic bytes `head` starts with (`None`: a plain tar).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// The blob that holds a layer's tar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// The blob's own digest (the diff id when it is the uncompressed tar).
    pub digest: Digest,
    pub compression: Compression,
    /// Bytes of the uncompressed tar (what `docker save` writes for the layer).
    pub tar_size: u64,
}

/// A layer's uncompressed tar as a stream (decompressed on the fly when its blob is not).
pub struct LayerTar {
    /// Where it is read from.
    pub blob: LayerBlob,
    reader: Box<dyn Read>,
}

impl Read for LayerTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl ImageStore {
    /// The blob that keeps the tar of the layer `chain_id`, whose diff id is `diff_id`: the
    /// uncompressed tar when the store has it, else the compressed blob that layer's record
    /// names, else one another layer with the same diff id recorded (found by reading every
    /// layer record: only for a layer whose own blob is gone). [`Error::BlobNotFound`] (of the
    /// diff id) when there is none.
    pub fn layer_blob(&self, chain_id: &Digest, diff_id: &Digest) -> Result<LayerBlob> {
        let plain = self.blob_path(diff_id);
        match fs::metadata(&plain) {
            Ok(m) if m.is_file() => {
                return Ok(LayerBlob {
                    digest: diff_id.clone(),
                    compression: Compression::None,
                    tar_size: m.len(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", plain, e)),
        }
        if let Ok(own) = self.layer_info(chain_id) {
            if let Some(b) = own
                .blob
                .filter(|b| own.diff_id == *diff_id && self.has_blob(&b.digest))
            {
                return Ok(b);
            }
        }
        self.list_layers()?
            .into_iter()
            .filter(|l| l.diff_id == *diff_id)
            .filter_map(|l| l.blob)
            .find(|b| self.has_blob(&b.digest))
            .ok_or_else(|| Error::BlobNotFound(diff_id.clone()))
    }

    /// The uncompressed tar of the layer `chain_id` (diff id `diff_id`), as a stream.
    pub fn open_layer_tar(&self, chain_id: &Digest, diff_id: &Digest) -> Result<LayerTar> {
        self.open_kept_tar(self.layer_blob(chain_id, diff_id)?)
    }

    /// The uncompressed tar kept in `blob` (what [`Self::layer_blob`] found), as a stream.
    pub fn open_kept_tar(&self, blob: LayerBlob) -> Result<LayerTar> {
        let file = BufReader::with_capacity(256 * 1024, self.open_blob(&blob.digest)?);
        let reader: Box<dyn Read> = match blob.compression {
            Compression::None => Box::new(file),
            _ => decompress(file)?,
        };
        Ok(LayerTar { blob, reader })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::testutil::{gzip, tar_bytes, zstd, E};

    fn store() -> (tempfile::TempDir, ImageStore) {
        let t = tempfile::tempdir().unwrap();
        let s = ImageStore::open(t.path().join("image")).unwrap();
        (t, s)
    }

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    fn plain() -> Vec<u8> {
        tar_bytes(&[E::Dir("etc/"), E::File("etc/hostname", b"box\n")])
    }

    /// A pulled layer: unpacked from `download` without a tar copy, the download kept.
    fn pull(s: &ImageStore, download: &[u8], diff_id: &Digest) -> crate::LayerInfo {
        pull_onto(s, None, download, diff_id)
    }

    /// [`pull`] on top of the layer `parent`.
    fn pull_onto(
        s: &ImageStore,
        parent: Option<&Digest>,
        download: &[u8],
        diff_id: &Digest,
    ) -> crate::LayerInfo {
        let mut file = tempfile::NamedTempFile::new_in(s.tmp_dir()).unwrap();
        file.write_all(download).unwrap();
        let mut p = s
            .prepare_layer_without_tar(download, Some(diff_id))
            .unwrap();
        p.keep_blob(file, Digest::sha256_of(download)).unwrap();
        s.commit_layer(parent, p).unwrap()
    }

    #[test]
    fn an_uncompressed_tar_is_found_by_its_diff_id_and_read_as_it_is() {
        let (_t, s) = store();
        let tar = plain();
        let diff_id = Digest::sha256_of(&tar);
        assert!(matches!(
            s.layer_blob(&diff_id, &diff_id),
            Err(Error::BlobNotFound(d)) if d == diff_id
        ));
        assert!(s.open_layer_tar(&diff_id, &diff_id).is_err());
        s.put_blob(&tar).unwrap();
        let blob = s.layer_blob(&diff_id, &diff_id).unwrap();
        assert_eq!(
            blob,
            LayerBlob {
                digest: diff_id.clone(),
                compression: Compression::None,
                tar_size: tar.len() as u64,
            }
        );
        assert_eq!(read_all(s.open_layer_tar(&diff_id, &diff_id).unwrap()), tar);
    }

    #[test]
    fn sniffing_names_each_compression() {
        let tar = plain();
        assert_eq!(Compression::sniff(&gzip(&tar)), Compression::Gzip);
        assert_eq!(Compression::sniff(&zstd(&tar)), Compression::Zstd);
        assert_eq!(Compression::sniff(&tar), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn a_pulled_layer_keeps_its_compressed_download_and_reads_back_its_tar() {
        let tar = plain();
        let diff_id = Digest::sha256_of(&tar);
        for (download, kind) in [
            (gzip(&tar), Compression::Gzip),
            (zstd(&tar), Compression::Zstd),
        ] {
            let (_t, s) = store();
            let digest = Digest::sha256_of(&download);
            let info = pull(&s, &download, &diff_id);
            assert_eq!(info.diff_id, diff_id);
            let want = LayerBlob {
                digest: digest.clone(),
                compression: kind,
                tar_size: tar.len() as u64,
            };
            assert_eq!(info.blob.as_ref(), Some(&want));
            assert_eq!(info.blob_digest(), &digest);
            // The record survives a reopen (it is in layer.json).
            let s = ImageStore::open(s.root()).unwrap();
            assert_eq!(s.layer_info(&info.chain_id).unwrap(), info);
            // The download is the blob; the uncompressed tar is not written.
            assert_eq!(s.get_blob(&digest).unwrap(), download);
            assert!(!s.has_blob(&diff_id));
            assert_eq!(s.layer_blob(&diff_id, &diff_id).unwrap(), want);
            let layer_tar = s.open_layer_tar(&diff_id, &diff_id).unwrap();
            assert_eq!(layer_tar.blob, want);
            assert_eq!(read_all(layer_tar), tar);
            // Removing the layer removes its blob; staging is empty.
            s.remove_layer(&info.chain_id).unwrap();
            assert!(!s.has_blob(&digest));
            assert!(s.layer_blob(&diff_id, &diff_id).is_err());
            assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
        }
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn an_uncompressed_download_or_a_tar_already_kept_makes_no_second_blob() {
        let tar = plain();
        let diff_id = Digest::sha256_of(&tar);
        // A plain-tar layer's download is its tar, named by the diff id.
        let (_t, s) = store();
        let info = pull(&s, &tar, &diff_id);
        assert_eq!(info.blob, None);
        assert_eq!(s.get_blob(&diff_id).unwrap(), tar);
        assert_eq!(read_all(s.open_layer_tar(&diff_id, &diff_id).unwrap()), tar);
        // The store holds the uncompressed tar already: the download is not kept.
        let (_t, s) = store();
        s.put_blob(&tar).unwrap();
        let gz = gzip(&tar);
        let info = pull(&s, &gz, &diff_id);
        assert_eq!(info.blob, None);
        assert!(!s.has_blob(&Digest::sha256_of(&gz)));
        assert_eq!(read_all(s.open_layer_tar(&diff_id, &diff_id).unwrap()), tar);
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn a_layer_prepared_without_its_tar_needs_a_blob_to_commit() {
        let (_t, s) = store();
        let tar = plain();
        let p = s.prepare_layer_without_tar(&gzip(&tar)[..], None).unwrap();
        assert!(s.commit_layer(None, p).is_err());
        assert!(!s.has_layer(&Digest::sha256_of(&tar)));
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    #[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
    fn each_layer_reads_its_own_blob_and_another_layers_when_its_own_is_gone() {
        let (_t, s) = store();
        let tar = plain();
        let diff_id = Digest::sha256_of(&tar);
        let base_tar = tar_bytes(&[E::Dir("base/")]);
        let base = s.apply_layer(None, &base_tar[..]).unwrap();
        // The same layer pulled twice: as a base layer (gzip) and on top of `base` (zstd).
        let a = pull(&s, &gzip(&tar), &diff_id);
        let b = pull_onto(&s, Some(&base.chain_id), &zstd(&tar), &diff_id);
        assert_ne!(a.chain_id, b.chain_id);
        let blob = |chain: &Digest| s.layer_blob(chain, &diff_id).unwrap();
        assert_eq!(blob(&a.chain_id).compression, Compression::Gzip);
        assert_eq!(blob(&b.chain_id).compression, Compression::Zstd);
        // Its own blob gone, a layer reads the tar another layer with its diff id keeps.
        s.delete_blob(a.blob_digest()).unwrap();
        assert_eq!(blob(&a.chain_id).compression, Compression::Zstd);
        assert_eq!(
            read_all(s.open_layer_tar(&a.chain_id, &diff_id).unwrap()),
            tar
        );
    }
}
