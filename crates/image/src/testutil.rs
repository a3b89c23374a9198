//! Helpers for building tar streams in tests, including hostile ones the `tar` crate's
//! safe setters refuse to produce.

use std::io::Write;

pub(crate) enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    FileMode(&'a str, &'a [u8], u32, u64, u64),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
    Fifo(&'a str),
}

fn raw_header(kind: tar::EntryType, name: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    let b = name.as_bytes();
    h.as_old_mut().name[..b.len()].copy_from_slice(b);
    h
}

fn set_link(h: &mut tar::Header, target: &str) {
    let b = target.as_bytes();
    h.as_old_mut().linkname[..b.len()].copy_from_slice(b);
}

pub(crate) fn tar_bytes(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (mut h, data): (tar::Header, &[u8]) = match e {
            E::Dir(n) => (raw_header(tar::EntryType::Directory, n, 0, 0o755), &[]),
            E::File(n, d) => (
                raw_header(tar::EntryType::Regular, n, d.len() as u64, 0o644),
                d,
            ),
            E::FileMode(n, d, mode, uid, gid) => {
                let mut h = raw_header(tar::EntryType::Regular, n, d.len() as u64, *mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                (h, d)
            }
            E::Symlink(n, t) => {
                let mut h = raw_header(tar::EntryType::Symlink, n, 0, 0o777);
                set_link(&mut h, t);
                (h, &[])
            }
            E::Hardlink(n, t) => {
                let mut h = raw_header(tar::EntryType::Link, n, 0, 0o644);
                set_link(&mut h, t);
                (h, &[])
            }
            E::Char(n) => {
                let mut h = raw_header(tar::EntryType::Char, n, 0, 0o666);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                (h, &[])
            }
            E::Fifo(n) => (raw_header(tar::EntryType::Fifo, n, 0, 0o644), &[]),
        };
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}
