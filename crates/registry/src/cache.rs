//! What berth knows about the compressed form of its layers: for each diff id (uncompressed
//! tar), the registry blobs it was pulled from or pushed as. A push uses it to skip
//! compressing and uploading layers the registry already has, and to mount blobs across
//! repositories.

use std::path::PathBuf;

use berth_image::Digest;
use serde::{Deserialize, Serialize};

/// One known compressed form of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// `host/repository` the blob was seen in.
    pub source: String,
}

/// A small directory of JSON files, one per diff id.
#[derive(Debug, Clone)]
pub struct DistributionCache {
    dir: PathBuf,
}

impl DistributionCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DistributionCache { dir: dir.into() }
    }

    fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", diff_id.hex()))
    }

    /// Every known compressed form of `diff_id`, most recent first.
    pub fn get(&self, diff_id: &Digest) -> Vec<BlobRecord> {
        std::fs::read(self.path(diff_id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Remembers a compressed form (best effort: the cache is an optimisation).
    pub fn add(&self, diff_id: &Digest, rec: BlobRecord) {
        let mut all = self.get(diff_id);
        all.retain(|r| !(r.digest == rec.digest && r.source == rec.source));
        all.insert(0, rec);
        all.truncate(16);
        let Ok(json) = serde_json::to_vec(&all) else {
            return;
        };
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(tmp) = tempfile::NamedTempFile::new_in(&self.dir) else {
            return;
        };
        if std::fs::write(tmp.path(), json).is_ok() {
            let _ = tmp.persist(self.path(diff_id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_most_recent_first() {
        let dir = tempfile::tempdir().unwrap();
        let c = DistributionCache::new(dir.path().join("d"));
        let diff = Digest::sha256_of(b"tar");
        assert!(c.get(&diff).is_empty());
        let rec = |n: &[u8], src: &str| BlobRecord {
            digest: Digest::sha256_of(n),
            size: 1,
            media_type: "x".into(),
            source: src.into(),
        };
        c.add(&diff, rec(b"a", "h/r"));
        c.add(&diff, rec(b"b", "h/r"));
        c.add(&diff, rec(b"a", "h/r"));
        let got = c.get(&diff);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].digest, Digest::sha256_of(b"a"));
    }
}
