use std::collections::BTreeMap;
use std::fs;

use serde_json::{json, Value};

use crate::archive::{apply_changes, import, load, save, LoadEvent, SaveItem};
use crate::config::{ContainerConfig, ImageConfig, RootFs, StrSlice};
use crate::digest::{sha256_of, Digest};
use crate::error::Error;
use crate::store::ImageStore;
use crate::testutil::{gzip, tar_bytes, E};

fn store() -> (tempfile::TempDir, ImageStore) {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::open(t.path().join("image")).unwrap();
    (t, s)
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    let c = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        created: Some("2024-01-01T00:00:00Z".into()),
        config: Some(ContainerConfig {
            cmd: Some(StrSlice(vec!["sh".into()])),
            ..Default::default()
        }),
        rootfs: RootFs {
            diff_ids: diff_ids.to_vec(),
            ..Default::default()
        },
        ..Default::default()
    };
    c.to_vec().unwrap()
}

/// A tar (the outer archive) from (name, bytes) files plus symlinks.
fn archive(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    for (name, target) in links {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, name, target).unwrap();
    }
    b.into_inner().unwrap()
}

fn layers() -> (Vec<u8>, Vec<u8>) {
    (
        tar_bytes(&[E::Dir("bin/"), E::File("bin/hello", b"hello")]),
        tar_bytes(&[E::File("etc/motd", b"hi"), E::File("bin/.wh.hello", b"")]),
    )
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn save_then_load_keeps_the_image_id() {
    let (_t, a) = store();
    let (l1, l2) = layers();
    let i1 = a.apply_layer(None, &gzip(&l1)[..]).unwrap();
    let i2 = a.apply_layer(Some(&i1.chain_id), &l2[..]).unwrap();
    let diff_ids = vec![i1.diff_id.clone(), i2.diff_id.clone()];
    let cfg = config_for(&diff_ids);
    let id = a.put_blob(&cfg).unwrap();
    let items = vec![
        SaveItem {
            id: id.clone(),
            config_bytes: cfg.clone(),
            repo_tags: vec!["busybox:latest".into(), "localhost:5000/x/y:1".into()],
            diff_ids: diff_ids.clone(),
        },
        SaveItem {
            id: id.clone(),
            config_bytes: cfg.clone(),
            repo_tags: vec!["busybox:other".into()],
            diff_ids: diff_ids.clone(),
        },
    ];
    let mut out = Vec::new();
    save(&items, &a, &mut out).unwrap();

    // Structure docker load (25+) expects.
    let mut ar = tar::Archive::new(&out[..]);
    let mut files = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        files.insert(name, v);
    }
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{}", id.hex()));
    assert_eq!(
        manifest[0]["RepoTags"],
        json!(["busybox:latest", "localhost:5000/x/y:1"])
    );
    assert_eq!(
        manifest[0]["Layers"][1],
        format!("blobs/sha256/{}", i2.diff_id.hex())
    );
    assert_eq!(files[&format!("blobs/sha256/{}", i1.diff_id.hex())], l1);
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/busybox:latest"
    );
    let mdig = Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap();
    let m: Value = serde_json::from_slice(&files[&format!("blobs/sha256/{}", mdig.hex())]).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert!(files.contains_key("oci-layout"));
    let repos: Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(repos["busybox"]["latest"], i2.diff_id.hex());

    let (_t2, b) = store();
    let mut events = Vec::new();
    let loaded = load(&out[..], &b, &mut |e| events.push(e)).unwrap();
    assert_eq!(loaded.len(), 1);
    let img = &loaded[0];
    assert_eq!(img.id, id);
    assert_eq!(img.config_bytes, cfg);
    assert_eq!(
        img.repo_tags,
        vec!["busybox:latest", "localhost:5000/x/y:1", "busybox:other"]
    );
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[1].chain_id, i2.chain_id);
    assert_eq!(b.get_blob(&id).unwrap(), cfg);
    assert!(events.iter().any(|e| matches!(e,
        LoadEvent::LoadingLayer { id, current, total } if id == i1.diff_id.short_id() && current == total && *total == l1.len() as u64)));
    assert!(b.layer_diff_dir(&i2.chain_id).join("etc/motd").exists());

    // Loading again reuses the unpacked layers.
    let mut events = Vec::new();
    let again = load(&out[..], &b, &mut |e| events.push(e)).unwrap();
    assert_eq!(again[0].id, id);
    assert!(events
        .iter()
        .all(|e| matches!(e, LoadEvent::LayerExists { .. })));

    // Saving from the second store is byte-identical.
    let mut out2 = Vec::new();
    save(&items, &b, &mut out2).unwrap();
    assert_eq!(out, out2);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn loads_legacy_docker_save_with_symlinked_layers() {
    let (l1, _) = layers();
    let d = sha256_of(&l1);
    // The same layer twice: legacy saves store it once and symlink the second copy.
    let cfg = config_for(&[d.clone(), d.clone()]);
    let cfg_name = format!("{}.json", sha256_of(&cfg).hex());
    let manifest = json!([{
        "Config": cfg_name,
        "RepoTags": ["myuser/app:v1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let ar = archive(
        &[
            ("aaa/layer.tar", &l1),
            ("aaa/VERSION", b"1.0"),
            (&cfg_name, &cfg),
            ("manifest.json", &manifest),
        ],
        &[("bbb/layer.tar", "../aaa/layer.tar")],
    );
    let (_t, s) = store();
    let loaded = load(&gzip(&ar)[..], &s, &mut |_| {}).unwrap();
    assert_eq!(loaded[0].repo_tags, vec!["myuser/app:v1"]);
    assert_eq!(loaded[0].id, sha256_of(&cfg));
    assert_eq!(loaded[0].layers.len(), 2);
    assert_eq!(loaded[0].layers[1].parent.as_ref(), Some(&d));
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn loads_oci_layout_with_gzip_layers_and_nested_index() {
    let (l1, l2) = layers();
    let (g1, g2) = (gzip(&l1), gzip(&l2));
    let cfg = config_for(&[sha256_of(&l1), sha256_of(&l2)]);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_of(&cfg), "size": cfg.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256_of(&g1), "size": g1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256_of(&g2), "size": g2.len()},
        ],
    }))
    .unwrap();
    let (arch, _) = crate::config::host_platform();
    let inner_index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_of(b"absent"), "size": 1, "platform": {"architecture": "other", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_of(&manifest), "size": manifest.len(), "platform": {"architecture": arch, "os": "linux"}},
        ],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256_of(&inner_index), "size": inner_index.len(),
             "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/alpine:3.20"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_of(&manifest), "size": manifest.len(),
             "annotations": {"io.containerd.image.name": "docker.io/library/alpine:edge", "org.opencontainers.image.ref.name": "edge"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_of(&manifest), "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "latest"}},
        ],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", sha256_of(b).hex());
    let names = [
        blob(&g1),
        blob(&g2),
        blob(&cfg),
        blob(&manifest),
        blob(&inner_index),
    ];
    let ar = archive(
        &[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("index.json", &index),
            (&names[0], &g1),
            (&names[1], &g2),
            (&names[2], &cfg),
            (&names[3], &manifest),
            (&names[4], &inner_index),
        ],
        &[],
    );
    let (_t, s) = store();
    let loaded = load(&ar[..], &s, &mut |_| {}).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].repo_tags, vec!["alpine:3.20", "alpine:edge"]);
    assert_eq!(loaded[0].layers[0].diff_id, sha256_of(&l1));
    // The uncompressed tar is what gets kept (and saved later).
    assert_eq!(s.get_blob(&sha256_of(&l2)).unwrap(), l2);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn diff_id_mismatch_fails_the_load() {
    let (l1, l2) = layers();
    let cfg = config_for(&[sha256_of(&l1), sha256_of(b"not the layer")]);
    let manifest = serde_json::to_vec(&json!([{
        "Config": "c.json", "RepoTags": ["x:1"], "Layers": ["1.tar", "2.tar"],
    }]))
    .unwrap();
    let ar = archive(
        &[
            ("1.tar", &l1),
            ("2.tar", &l2),
            ("c.json", &cfg),
            ("manifest.json", &manifest),
        ],
        &[],
    );
    let (_t, s) = store();
    let e = load(&ar[..], &s, &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(!s.has_blob(&sha256_of(&cfg)));
    assert!(!s.has_blob(&sha256_of(&l2)));
    // Layer count mismatch.
    let manifest = serde_json::to_vec(&json!([{"Config": "c.json", "Layers": ["1.tar"]}])).unwrap();
    let ar = archive(
        &[
            ("1.tar", &l1),
            ("c.json", &cfg),
            ("manifest.json", &manifest),
        ],
        &[],
    );
    assert!(matches!(
        load(&ar[..], &s, &mut |_| {}).unwrap_err(),
        Error::InvalidArchive(_)
    ));
    // Neither layout.
    let ar = archive(&[("hello", b"x")], &[]);
    assert!(matches!(
        load(&ar[..], &s, &mut |_| {}).unwrap_err(),
        Error::InvalidArchive(_)
    ));
}

#[test]
fn hostile_outer_archives_are_contained() {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::open(t.path().join("a/b/c/image")).unwrap();
    let ar = tar_bytes(&[E::File("../../../../../pwned", b"x")]);
    assert!(matches!(
        load(&ar[..], &s, &mut |_| {}).unwrap_err(),
        Error::UnsafePath { .. }
    ));
    // manifest.json pointing outside via a symlink stays in the staging dir.
    let manifest = serde_json::to_vec(&json!([{"Config": "evil/passwd", "Layers": []}])).unwrap();
    let ar = archive(&[("manifest.json", &manifest)], &[("evil", "/etc")]);
    let e = load(&ar[..], &s, &mut |_| {}).unwrap_err();
    assert!(e.is_not_found() || matches!(e, Error::Io { .. }), "{e}");
    assert!(!t.path().join("a/pwned").exists());
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn import_makes_a_single_layer_image_with_changes() {
    let (_t, s) = store();
    let rootfs = tar_bytes(&[E::Dir("bin/"), E::File("bin/sh", b"#!")]);
    let changes: Vec<String> = [
        "CMD echo hello",
        r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
        "ENV A=1 B=\"two words\"",
        "ENV A 3",
        "EXPOSE 80 53/udp 8000-8001",
        "LABEL maintainer=me version=\"1 0\"",
        "USER nobody",
        "WORKDIR /app",
        "WORKDIR sub",
        r#"VOLUME ["/data"]"#,
        "VOLUME /logs /cache",
        "STOPSIGNAL SIGINT",
        "onbuild run make",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let img = import(&gzip(&rootfs)[..], &changes, "Imported from -", &s).unwrap();
    assert_eq!(img.id, sha256_of(&img.config_bytes));
    assert_eq!(s.get_blob(&img.id).unwrap(), img.config_bytes);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.config.rootfs.diff_ids, vec![sha256_of(&rootfs)]);
    assert_eq!(img.config.history.len(), 1);
    assert_eq!(
        img.config.history[0].comment.as_deref(),
        Some("Imported from -")
    );
    assert_eq!(img.config.history[0].created_by, None);
    assert_eq!(img.config.os, "linux");
    let c = img.config.config.as_ref().unwrap();
    assert_eq!(
        c.cmd.as_ref().unwrap().0,
        vec!["/bin/sh", "-c", "echo hello"]
    );
    assert_eq!(c.entrypoint.as_ref().unwrap().0, vec!["/bin/sh", "-c"]);
    assert_eq!(c.env.as_ref().unwrap(), &vec!["B=two words", "A=3"]);
    let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    assert_eq!(c.labels.as_ref().unwrap()["version"], "1 0");
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert_eq!(c.working_dir.as_deref(), Some("/app/sub"));
    assert_eq!(c.volumes.as_ref().unwrap().len(), 3);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(c.on_build.as_ref().unwrap(), &vec!["RUN make"]);
    // Config JSON parses back identically.
    assert_eq!(
        ImageConfig::from_slice(&img.config_bytes).unwrap(),
        img.config
    );

    let mut cc = ContainerConfig::default();
    for bad in ["FROM x", "EXPOSE abc", "ENV", "ONBUILD FROM x", "LABEL =x"] {
        assert!(
            matches!(
                apply_changes(&mut cc, &[bad.to_string()]),
                Err(Error::InvalidChange { .. } | Error::UnknownChange(_))
            ),
            "{bad}"
        );
    }
    let e = apply_changes(&mut cc, &["FROM x".into()]).unwrap_err();
    assert!(e.to_string() == "from is not a valid change command", "{e}");
}

#[test]
#[ignore = "needs root (chown to the layer's owners): the privileged tier runs it"]
fn imported_busybox_survives_save_and_load() {
    let bb = std::path::Path::new("/bin/busybox");
    if !bb.exists() {
        eprintln!("skipping: /bin/busybox missing");
        return;
    }
    let mut b = tar::Builder::new(Vec::new());
    b.append_path_with_name(bb, "bin/busybox").unwrap();
    for applet in ["sh", "ls", "echo"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let rootfs = b.into_inner().unwrap();
    let (_t, a) = store();
    let img = import(
        &crate::testutil::zstd(&rootfs)[..],
        &["CMD [\"sh\"]".to_string()],
        "Imported from -",
        &a,
    )
    .unwrap();
    let item = SaveItem {
        id: img.id.clone(),
        config_bytes: img.config_bytes.clone(),
        repo_tags: vec!["bb:imported".into()],
        diff_ids: img.config.rootfs.diff_ids.clone(),
    };
    let mut out = Vec::new();
    save(&[item], &a, &mut out).unwrap();
    let (_t2, b2) = store();
    let loaded = load(&out[..], &b2, &mut |_| {}).unwrap();
    assert_eq!(loaded[0].id, img.id);
    assert_eq!(loaded[0].repo_tags, vec!["bb:imported"]);
    let top = loaded[0].top_layer().unwrap();
    let dir = &b2.lower_dirs(top).unwrap()[0];
    assert_eq!(
        fs::read(dir.join("bin/busybox")).unwrap(),
        fs::read(bb).unwrap()
    );
    assert_eq!(
        fs::read_link(dir.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
}

#[test]
fn oci_ref_name_annotations() {
    use crate::archive::tags_from_annotations_for_test as tags;
    assert_eq!(tags("alpine:3.20"), vec!["alpine:3.20"]);
    assert_eq!(tags("docker.io/library/alpine:3.20"), vec!["alpine:3.20"]);
    assert!(tags("latest").is_empty());
    assert!(tags("1.0").is_empty());
}
