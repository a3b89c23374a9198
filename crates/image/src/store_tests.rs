use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use crate::digest::{chain_id, sha256_of, Digest};
use crate::error::Error;
use crate::store::ImageStore;
use crate::testutil::{gzip, tar_bytes, zstd, E};
use crate::unpack::lgetxattr;

fn store() -> (tempfile::TempDir, ImageStore) {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::open(t.path().join("image")).unwrap();
    (t, s)
}

#[test]
fn blobs_round_trip_and_verify() {
    let (_t, s) = store();
    let d = s.put_blob(b"hello").unwrap();
    assert_eq!(d, sha256_of(b"hello"));
    assert!(s.has_blob(&d));
    assert_eq!(s.get_blob(&d).unwrap(), b"hello");
    assert_eq!(s.blob_size(&d).unwrap(), 5);
    let (d2, n) = s.put_blob_reader(&b"hello"[..]).unwrap();
    assert_eq!((d2, n), (d.clone(), 5));
    let wrong = sha256_of(b"other");
    let e = s.put_blob_expected(&b"hello!"[..], &wrong).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }));
    assert!(!s.has_blob(&sha256_of(b"hello!")));
    s.delete_blob(&d).unwrap();
    assert!(s.get_blob(&d).unwrap_err().is_not_found());
    s.delete_blob(&d).unwrap();
    // Nothing left behind in the staging area.
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn diff_id_is_sha_of_uncompressed_tar_for_every_compression() {
    let plain = tar_bytes(&[E::Dir("etc/"), E::File("etc/hostname", b"box\n")]);
    let want = sha256_of(&plain);
    let (_t, s) = store();
    let a = s.apply_layer(None, &plain[..]).unwrap();
    assert_eq!(a.diff_id, want);
    assert_eq!(a.chain_id, want);
    assert_eq!(a.size, 4);
    assert_eq!(s.get_blob(&want).unwrap(), plain);

    for compressed in [gzip(&plain), zstd(&plain)] {
        let (_t, s) = store();
        let info = s.apply_layer(None, &compressed[..]).unwrap();
        assert_eq!(info.diff_id, want);
        assert_eq!(s.get_blob(&want).unwrap(), plain);
        let diff = s.layer_diff_dir(&info.chain_id);
        assert_eq!(fs::read(diff.join("etc/hostname")).unwrap(), b"box\n");
    }
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn apply_is_idempotent_and_chains() {
    let (_t, s) = store();
    let l1 = tar_bytes(&[E::File("a", b"1")]);
    let l2 = tar_bytes(&[E::File("b", b"2")]);
    let i1 = s.apply_layer(None, &l1[..]).unwrap();
    let i2 = s.apply_layer(Some(&i1.chain_id), &l2[..]).unwrap();
    assert_eq!(
        Some(i2.chain_id.clone()),
        chain_id(&[i1.diff_id.clone(), i2.diff_id.clone()])
    );
    assert_eq!(i2.parent.as_ref(), Some(&i1.chain_id));
    // Mark the unpacked copy: a second apply must keep it (unpacked once).
    let marker = s.layer_diff_dir(&i2.chain_id).join("marker");
    fs::write(&marker, b"x").unwrap();
    let again = s.apply_layer(Some(&i1.chain_id), &l2[..]).unwrap();
    assert_eq!(again, i2);
    assert!(marker.exists());
    assert_eq!(s.list_layers().unwrap().len(), 2);
    assert_eq!(
        s.lower_dirs(&i2.chain_id).unwrap(),
        vec![
            s.layer_diff_dir(&i2.chain_id),
            s.layer_diff_dir(&i1.chain_id)
        ]
    );
    assert_eq!(s.layer_info(&i1.chain_id).unwrap(), i1);
    // Unknown parent.
    let bogus = sha256_of(b"nope");
    assert!(matches!(
        s.apply_layer(Some(&bogus), &l2[..]).unwrap_err(),
        Error::LayerNotFound(_)
    ));
    s.remove_layer(&i2.chain_id).unwrap();
    assert!(!s.has_layer(&i2.chain_id));
    assert!(!s.has_blob(&i2.diff_id));
    assert!(s.has_layer(&i1.chain_id));
    s.remove_layer(&i2.chain_id).unwrap();
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn expected_diff_id_mismatch_registers_nothing() {
    let (_t, s) = store();
    let l = tar_bytes(&[E::File("a", b"1")]);
    let wrong: Digest = sha256_of(b"wrong");
    let e = s
        .apply_layer_expect(None, &l[..], Some(&wrong))
        .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(s.list_layers().unwrap().is_empty());
    assert!(!s.has_blob(&sha256_of(&l)));
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn whiteouts_and_opaque_dirs_become_overlay_form() {
    let (_t, s) = store();
    let l1 = tar_bytes(&[
        E::Dir("a/"),
        E::File("a/f1", b"1"),
        E::File("a/f2", b"2"),
        E::Dir("b/"),
        E::File("b/x", b"x"),
    ]);
    let l2 = tar_bytes(&[
        E::Dir("a/"),
        E::File("a/.wh.f1", b""),
        E::Dir("b/"),
        E::File("b/.wh..wh..opq", b""),
        E::File("b/y", b"y"),
        E::File(".wh..wh.plnk", b""),
    ]);
    let i1 = s.apply_layer(None, &l1[..]).unwrap();
    let i2 = s.apply_layer(Some(&i1.chain_id), &l2[..]).unwrap();
    let d = s.layer_diff_dir(&i2.chain_id);
    let m = fs::symlink_metadata(d.join("a/f1")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert!(!d.join("a/.wh.f1").exists());
    assert!(!d.join(".wh..wh.plnk").exists());
    assert!(!d.join("b/.wh..wh..opq").exists());
    assert_eq!(
        lgetxattr(&d.join("b"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        lgetxattr(&d.join("a"), "trusted.overlay.opaque").unwrap(),
        None
    );
}

#[test]
fn parent_dir_breakout_is_rejected() {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::open(t.path().join("a/b/image")).unwrap();
    let l = tar_bytes(&[E::File("../../etc/x", b"evil")]);
    let e = s.apply_layer(None, &l[..]).unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    // Also with the breakout hidden mid-path.
    let l = tar_bytes(&[E::File("x/../../../../../etc/y", b"evil")]);
    assert!(s.apply_layer(None, &l[..]).is_err());
    for dir in [
        t.path().join("a/b/image/tmp"),
        t.path().join("a/b/image/layers"),
    ] {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                assert!(!p.ends_with("etc/x"), "{p:?}");
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
    }
    assert!(!t.path().join("a/etc/x").exists());
    assert!(!t.path().join("etc/x").exists());
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn absolute_paths_are_made_relative() {
    let (_t, s) = store();
    let l = tar_bytes(&[E::File("/abs/file", b"in"), E::File("/../rooted", b"r")]);
    let i = s.apply_layer(None, &l[..]).unwrap();
    let d = s.layer_diff_dir(&i.chain_id);
    assert_eq!(fs::read(d.join("abs/file")).unwrap(), b"in");
    assert_eq!(fs::read(d.join("rooted")).unwrap(), b"r");
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn symlinks_are_never_followed_during_unpack() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let s = ImageStore::open(t.path().join("image")).unwrap();
    let link_target = outside.to_str().unwrap().to_string();
    let l = tar_bytes(&[E::Symlink("a", &link_target), E::File("a/f", b"evil")]);
    let e = s.apply_layer(None, &l[..]).unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    assert!(!outside.join("f").exists());
    // Directory entry through a symlink, and a relative symlink climbing out.
    let l = tar_bytes(&[E::Symlink("up", "../../../../.."), E::Dir("up/evil/")]);
    assert!(s.apply_layer(None, &l[..]).is_err());
    // A file entry replacing a symlink replaces the link, it does not write through it.
    let victim = outside.join("victim");
    fs::write(&victim, b"safe").unwrap();
    let l = tar_bytes(&[
        E::Symlink("v", victim.to_str().unwrap()),
        E::File("v", b"evil"),
    ]);
    let i = s.apply_layer(None, &l[..]).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"safe");
    let d = s.layer_diff_dir(&i.chain_id);
    assert_eq!(fs::read(d.join("v")).unwrap(), b"evil");
    // Absolute symlink targets are created verbatim.
    let l = tar_bytes(&[E::Symlink("etc", "/etc"), E::Symlink("dangling", "/nope")]);
    let i = s.apply_layer(None, &l[..]).unwrap();
    let d = s.layer_diff_dir(&i.chain_id);
    assert_eq!(fs::read_link(d.join("etc")).unwrap().to_str(), Some("/etc"));
    assert!(fs::symlink_metadata(d.join("dangling")).is_ok());
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn hardlinks_must_stay_inside_the_layer() {
    let (_t, s) = store();
    for target in ["../../../../etc/passwd", "/etc/passwd", "missing"] {
        let l = tar_bytes(&[E::Hardlink("h", target)]);
        assert!(s.apply_layer(None, &l[..]).is_err(), "{target}");
    }
    // Through a symlinked directory.
    let l = tar_bytes(&[E::Symlink("s", "/etc"), E::Hardlink("h", "s/passwd")]);
    assert!(s.apply_layer(None, &l[..]).is_err());
    // A hardlink to a symlink links the symlink itself.
    let l = tar_bytes(&[
        E::File("f", b"data"),
        E::Hardlink("g", "f"),
        E::Symlink("sl", "/etc/passwd"),
        E::Hardlink("sl2", "sl"),
    ]);
    let i = s.apply_layer(None, &l[..]).unwrap();
    let d = s.layer_diff_dir(&i.chain_id);
    let (f, g) = (
        fs::metadata(d.join("f")).unwrap(),
        fs::metadata(d.join("g")).unwrap(),
    );
    assert_eq!(f.ino(), g.ino());
    assert!(fs::symlink_metadata(d.join("sl2"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn devices_skipped_fifos_kept_metadata_preserved() {
    let (_t, s) = store();
    let l = tar_bytes(&[
        E::Dir("dev/"),
        E::Char("dev/null"),
        E::Fifo("pipe"),
        E::FileMode("bin/su", b"#!", 0o4755, 0, 0),
        E::FileMode("home/u/f", b"u", 0o600, 1000, 1001),
    ]);
    let i = s.apply_layer(None, &l[..]).unwrap();
    let d = s.layer_diff_dir(&i.chain_id);
    assert!(fs::symlink_metadata(d.join("dev/null")).is_err());
    assert!(fs::symlink_metadata(d.join("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    let su = fs::metadata(d.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.mtime(), 1_600_000_000);
    let f = fs::metadata(d.join("home/u/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (1000, 1001));
    assert_eq!(fs::metadata(d.join("dev")).unwrap().mtime(), 1_600_000_000);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn xattrs_from_pax_headers_are_applied() {
    let (_t, s) = store();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.user.test", &b"v"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("file").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let l = b.into_inner().unwrap();
    let i = s.apply_layer(None, &l[..]).unwrap();
    let f = s.layer_diff_dir(&i.chain_id).join("file");
    assert_eq!(lgetxattr(&f, "user.test").unwrap(), Some(b"v".to_vec()));
    assert_eq!(lgetxattr(&f, "trusted.overlay.redirect").unwrap(), None);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn corrupt_and_truncated_tars_are_clear_errors() {
    let (_t, s) = store();
    let l = tar_bytes(&[E::File("big", &[7u8; 5000])]);
    let e = s.apply_layer(None, &l[..2000]).unwrap_err();
    assert!(e.to_string().starts_with("invalid tar archive"), "{e}");
    let mut bad = l.clone();
    bad[148..156].copy_from_slice(b"0000000\0"); // checksum
    let e = s.apply_layer(None, &bad[..]).unwrap_err();
    assert!(e.to_string().starts_with("invalid tar archive"), "{e}");
    let gz = gzip(&l);
    assert!(s.apply_layer(None, &gz[..gz.len() / 2]).is_err());
    assert!(s.list_layers().unwrap().is_empty());
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn busybox_rootfs_layer() {
    let bb = std::path::Path::new("/bin/busybox");
    if !bb.exists() {
        eprintln!("skipping: /bin/busybox missing");
        return;
    }
    let mut b = tar::Builder::new(Vec::new());
    b.append_path_with_name(bb, "bin/busybox").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_cksum();
    b.append_link(&mut h, "bin/sh", "busybox").unwrap();
    let l = b.into_inner().unwrap();
    let (_t, s) = store();
    let i = s.apply_layer(None, &gzip(&l)[..]).unwrap();
    let d = s.layer_diff_dir(&i.chain_id);
    assert_eq!(
        fs::read(d.join("bin/busybox")).unwrap(),
        fs::read(bb).unwrap()
    );
    assert!(fs::metadata(d.join("bin/sh")).unwrap().permissions().mode() & 0o111 != 0);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn pax_uid_gid_override_header_fields() {
    let (_t, s) = store();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("uid", &b"3000000"[..]), ("gid", &b"3000001"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("big").unwrap();
    h.set_size(0);
    h.set_mode(0o600);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let l = b.into_inner().unwrap();
    let i = s.apply_layer(None, &l[..]).unwrap();
    let m = fs::metadata(s.layer_diff_dir(&i.chain_id).join("big")).unwrap();
    assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
}
