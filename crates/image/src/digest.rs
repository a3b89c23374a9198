//! Content digests (`sha256:<64 hex>`), streaming hashers and OCI chain ids.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A validated `sha256:<64 lowercase hex>` digest. Image ids, diff ids, chain ids and
/// blob names are all of this type.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

const PREFIX: &str = "sha256:";

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// Parse `sha256:<64 hex>`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidDigest {
            input: s.to_string(),
            reason,
        };
        let (alg, hex) = s.split_once(':').ok_or_else(|| bad("missing algorithm"))?;
        if alg != "sha256" {
            return Err(bad("unsupported digest algorithm"));
        }
        if hex.len() != 64 {
            return Err(bad("invalid checksum digest length"));
        }
        if !is_lower_hex(hex) {
            return Err(bad("invalid checksum digest format"));
        }
        Ok(Digest(s.to_string()))
    }

    /// Build from 64 lowercase hex characters (no algorithm prefix).
    pub fn from_hex(hex: &str) -> Result<Self> {
        Self::parse(&format!("{PREFIX}{hex}"))
    }

    /// sha256 of a byte slice.
    pub fn sha256_of(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    fn from_hasher(h: Sha256) -> Self {
        Digest(format!("{PREFIX}{}", hex::encode(h.finalize())))
    }

    /// The full string, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// Docker's short id: the first 12 hex characters.
    pub fn short_id(&self) -> &str {
        &self.hex()[..12]
    }
}

/// sha256 of a byte slice (free-function form of [`Digest::sha256_of`]).
pub fn sha256_of(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// OCI chain id of a layer stack, bottom layer first:
/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
/// `None` for an empty stack.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

/// Chain ids of every prefix of the stack (`result[i]` is the chain id of layers `0..=i`).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => child_chain_id(parent, d),
        };
        out.push(next);
    }
    out
}

/// Chain id of `diff_id` stacked on a parent chain id.
pub fn child_chain_id(parent: &Digest, diff_id: &Digest) -> Digest {
    Digest::sha256_of(format!("{parent} {diff_id}").as_bytes())
}

/// A `Write` adapter that hashes (sha256) and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Digest of everything written so far (does not consume the writer).
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Finish: (digest, byte count, inner writer).
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A `Read` adapter that hashes (sha256) and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Digest of everything read so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Finish: (digest, byte count, inner reader).
    pub fn finish(self) -> (Digest, u64, R) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_accessors() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.short_id(), "e3b0c44298fc");
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
        assert_eq!(sha256_of(b""), d);
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("sha512:abc").is_err());
        assert!(Digest::parse(&EMPTY.to_uppercase()).is_err());
        assert!(Digest::parse("e3b0").is_err());
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
    }

    #[test]
    fn hashing_adapters() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (d, n, buf) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(d, sha256_of(b"hello world"));
        let mut r = HashingReader::new(&buf[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.digest(), d);
        assert_eq!(r.count(), 11);
    }

    #[test]
    fn chain_ids_follow_oci_spec() {
        let a = sha256_of(b"a");
        let b = sha256_of(b"b");
        let c = sha256_of(b"c");
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        let ab = sha256_of(format!("{a} {b}").as_bytes());
        let abc = sha256_of(format!("{ab} {c}").as_bytes());
        assert_eq!(chain_ids(&[a, b, c]), vec![sha256_of(b"a"), ab, abc]);
    }
}
