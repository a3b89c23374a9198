//! What a pull keeps: each pulled layer's compressed download is its blob (no uncompressed copy
//! of the tar), and everything that reads a layer's tar still works from it: `docker save`
//! writes the uncompressed tars, `docker push` uploads a gzip blob as it is (a zstd one
//! recompressed), and removing the image removes the compressed blobs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use berth_tests::registry::{pipe, pushed_parts, sha256_digest, TestRegistry};
use berth_tests::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.oci.image.manifest.v1+json";

/// Names in the daemon's content store.
fn blobs(d: &Daemon) -> BTreeSet<String> {
    std::fs::read_dir(d.root.join("data/image/blobs/sha256"))
        .map(|it| {
            it.flatten()
                .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

/// Busybox's config and uncompressed layer tar, by way of a push from a daemon that loaded it.
fn busybox_parts(reg: &TestRegistry) -> (serde_json::Value, Vec<u8>) {
    let d = Daemon::start();
    d.load_busybox();
    let image = format!("{}/src/busybox:1", reg.addr());
    assert_ok(&d.docker(&["tag", "busybox", &image]), "docker tag");
    assert_ok(&d.docker(&["push", &image]), "docker push");
    pushed_parts(reg, "src/busybox")
}

/// A one-file layer tar (made by GNU tar).
fn file_layer(dir: &Path, name: &str, body: &str) -> Vec<u8> {
    let src = dir.join(format!("layer-{name}"));
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join(name), body).expect("write");
    let out = Command::new("tar")
        .args([
            "-C",
            &src.to_string_lossy(),
            "--owner=0",
            "--group=0",
            "-cf",
            "-",
            name,
        ])
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar failed");
    out.stdout
}

struct Pushed {
    image: String,
    /// (compressed digest, diff id) per layer, bottom first.
    layers: Vec<(String, String)>,
}

/// Puts a three-layer image in `reg`: busybox gzip'ed at level 9 (which berth's own push,
/// gzip level 1, would not reproduce), a file layer as zstd, another as gzip.
fn put_image(reg: &TestRegistry, dir: &Path) -> Pushed {
    let (mut config, bb) = busybox_parts(reg);
    let one = file_layer(dir, "one", "first layer\n");
    let two = file_layer(dir, "two", "second layer\n");
    let parts = [
        (pipe("gzip", &["-9", "-n", "-c"], &bb), &bb, "tar+gzip"),
        (pipe("zstd", &["-q", "-c"], &one), &one, "tar+zstd"),
        (pipe("gzip", &["-6", "-n", "-c"], &two), &two, "tar+gzip"),
    ];
    let repo = "pulled/app";
    let mut layers = Vec::new();
    let mut descs = Vec::new();
    for (blob, tar, kind) in &parts {
        let digest = reg.put_blob(repo, blob);
        descs.push(serde_json::json!({
            "mediaType": format!("application/vnd.oci.image.layer.v1.{kind}"),
            "digest": digest,
            "size": blob.len(),
        }));
        layers.push((digest, sha256_digest(tar)));
    }
    config["rootfs"]["diff_ids"] = layers.iter().map(|(_, d)| d.clone()).collect();
    config["history"] = serde_json::json!([{}, {}, {}]);
    let config = serde_json::to_vec(&config).expect("json");
    let config_digest = reg.put_blob(repo, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": descs,
    }))
    .expect("json");
    reg.put_manifest(repo, "1", OCI_MANIFEST, &manifest);
    Pushed {
        image: format!("{}/{repo}:1", reg.addr()),
        layers,
    }
}

fn run_cat(d: &Daemon, image: &str) {
    let out = d.docker(&["run", "--rm", image, "cat", "/one", "/two"]);
    assert_ok(&out, "docker run");
    assert_eq!(stdout(&out), "first layer\nsecond layer\n");
}

/// The layer tars of a `docker save` archive, each by the sha256 of its bytes, in the
/// order its `manifest.json` lists them.
fn saved_layer_digests(archive: &Path, dir: &Path) -> Vec<String> {
    let out = dir.join("saved");
    std::fs::create_dir_all(&out).expect("mkdir");
    let st = Command::new("tar")
        .args([
            "-xf",
            &archive.to_string_lossy(),
            "-C",
            &out.to_string_lossy(),
        ])
        .status()
        .expect("tar");
    assert!(st.success(), "tar -x of the saved image");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest.json"))
            .expect("json");
    manifest[0]["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|p| {
            let bytes = std::fs::read(out.join(p.as_str().expect("path"))).expect("layer");
            sha256_digest(&bytes)
        })
        .collect()
}

#[test]
fn a_pulled_image_keeps_its_compressed_layers_and_saves_pushes_and_removes_through_them() {
    let reg = TestRegistry::start();
    let other = TestRegistry::start();
    let d = Daemon::start();
    // Scratch files live in the daemon's test root, removed with it.
    let dir = d.root.join("scratch");
    let pushed = put_image(&reg, &dir);
    let diff_ids: Vec<String> = pushed.layers.iter().map(|(_, d)| d.clone()).collect();

    let before = blobs(&d);
    assert_ok(&d.docker(&["pull", &pushed.image]), "docker pull");
    run_cat(&d, &pushed.image);
    // The downloads are the layers' blobs; no uncompressed tar was written.
    let kept = blobs(&d);
    for (compressed, diff_id) in &pushed.layers {
        assert!(kept.contains(compressed), "{compressed} not kept: {kept:?}");
        assert!(
            !kept.contains(diff_id),
            "uncompressed tar {diff_id} written"
        );
    }

    // docker save writes each layer's uncompressed tar: their digests are the diff ids.
    let archive = dir.join("app.tar");
    assert_ok(
        &d.docker(&["save", "-o", &archive.to_string_lossy(), &pushed.image]),
        "docker save",
    );
    assert_eq!(saved_layer_digests(&archive, &dir), diff_ids);

    // Pushed elsewhere: the gzip downloads go up as they are, the zstd one as gzip.
    let copy = format!("{}/copy/app:1", other.addr());
    assert_ok(&d.docker(&["tag", &pushed.image, &copy]), "docker tag");
    assert_ok(&d.docker(&["push", &copy]), "docker push");
    let m: serde_json::Value =
        serde_json::from_slice(&other.get_manifest("copy/app", "1", ACCEPT)).expect("manifest");
    let up: Vec<String> = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect();
    assert_eq!(up[0], pushed.layers[0].0, "gzip layer pushed as pulled");
    assert_eq!(up[2], pushed.layers[2].0, "gzip layer pushed as pulled");
    assert_ne!(up[1], pushed.layers[1].0, "the zstd layer is recompressed");
    let gz = other.get_blob("copy/app", &up[1]);
    assert_eq!(sha256_digest(&pipe("gzip", &["-dc"], &gz)), diff_ids[1]);

    // ... and a fresh daemon pulls the copy back and runs it.
    let fresh = Daemon::start();
    assert_ok(&fresh.docker(&["pull", &copy]), "docker pull of the copy");
    run_cat(&fresh, &copy);
    let id = |d: &Daemon, image: &str| {
        let out = d.docker(&["image", "inspect", "-f", "{{.Id}}", image]);
        assert_ok(&out, "docker image inspect");
        stdout(&out).trim().to_string()
    };
    assert_eq!(id(&fresh, &copy), id(&d, &pushed.image), "same image id");

    // Removing the image removes its compressed blobs, and a pull after that works.
    assert_ok(&d.docker(&["rmi", &pushed.image, &copy]), "docker rmi");
    let left = blobs(&d);
    for (compressed, _) in &pushed.layers {
        assert!(!left.contains(compressed), "{compressed} left: {left:?}");
    }
    assert_eq!(left, before, "the store holds what it held before the pull");
    assert_ok(&d.docker(&["pull", &pushed.image]), "docker pull again");
    run_cat(&d, &pushed.image);
    assert_ok(
        &d.docker(&["image", "prune", "-a", "-f"]),
        "docker image prune",
    );
    assert_eq!(blobs(&d), before);
}
