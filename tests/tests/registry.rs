//! Ship: push, pull against a private Debian `docker-registry` on 127.0.0.1 (and a fake one
//! for failures), through berthd with the real docker CLI and with `berth`. Login, bearer
//! tokens and HTTPS are in `registry_auth.rs`.

use std::process::Command;

use std::sync::atomic::Ordering;

use berth_tests::registry::image_inspect as inspect;
use berth_tests::registry::{
    fake_state, pipe, push_busybox, push_busybox_plain, pushed_parts, rmi_pull_run, sha256_digest,
    FakeRegistry, TestRegistry, DOCKER_MANIFEST,
};
use berth_tests::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Files left in the image store's staging directory.
fn staging_files(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.root.join("data/image/tmp"))
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn layer_dirs(d: &Daemon) -> usize {
    std::fs::read_dir(d.root.join("data/image/layers"))
        .map(|it| it.flatten().filter(|e| e.file_name() != "empty").count())
        .unwrap_or(0)
}

#[test]
fn docker_push_rmi_pull_run() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, digest) = push_busybox(&d, &reg, "test/busybox");
    // The registry has exactly what we said we pushed.
    let manifest = reg.get_manifest("test/busybox", "1", DOCKER_MANIFEST);
    assert_eq!(sha256_digest(&manifest), digest);
    let id = inspect(&d, "{{.Id}}", &image);
    assert_eq!(
        inspect(&d, "{{json .RepoDigests}}", &image),
        format!("[\"{}/test/busybox@{digest}\"]", reg.addr())
    );

    // A second push finds every blob there already.
    let out = d.docker(&["push", &image]);
    assert_ok(&out, "docker push again");
    assert!(
        stdout(&out).contains("Layer already exists"),
        "{}",
        stdout(&out)
    );

    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    assert!(!d.docker(&["image", "inspect", &image]).status.success());

    let out = d.docker(&["pull", &image]);
    assert_ok(&out, "docker pull");
    let text = stdout(&out);
    for want in [
        "1: Pulling from test/busybox",
        "Pull complete",
        &format!("Digest: {digest}"),
        &format!("Status: Downloaded newer image for {image}"),
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    assert_eq!(
        inspect(&d, "{{.Id}}", &image),
        id,
        "same image id after the round trip"
    );
    assert_eq!(
        inspect(&d, "{{json .RepoDigests}}", &image),
        format!("[\"{}/test/busybox@{digest}\"]", reg.addr())
    );
    let out = d.docker(&["run", "--rm", &image, "echo", "pulled and running"]);
    assert_ok(&out, "docker run pulled image");
    assert_eq!(stdout(&out), "pulled and running\n");

    let out = d.docker(&["pull", &image]);
    assert_ok(&out, "docker pull again");
    assert!(
        stdout(&out).contains(&format!("Status: Image is up to date for {image}")),
        "{}",
        stdout(&out)
    );
    assert!(staging_files(&d).is_empty(), "{:?}", staging_files(&d));

    // By digest: no tag is added, the repo digest resolves.
    assert_ok(&d.docker(&["rmi", &image]), "docker rmi");
    let by_digest = format!("{}/test/busybox@{digest}", reg.addr());
    let out = d.docker(&["pull", &by_digest]);
    assert_ok(&out, "docker pull by digest");
    assert_eq!(inspect(&d, "{{.Id}}", &by_digest), id);
    assert_eq!(inspect(&d, "{{json .RepoTags}}", &by_digest), "[]");
    let out = d.docker(&["run", "--rm", &by_digest, "true"]);
    assert_ok(&out, "docker run by digest");
    let out = d.docker(&["rmi", &by_digest]);
    assert_ok(&out, "docker rmi by digest");
    assert!(
        stdout(&out).starts_with(&format!("Untagged: {by_digest}\nDeleted: {id}")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn pull_streams_docker_progress_messages() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, digest) = push_busybox(&d, &reg, "progress/busybox");
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let (status, body) = d.api(
        "POST",
        &format!(
            "/v1.51/images/create?fromImage={}/progress/busybox&tag=1",
            reg.addr()
        ),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let msgs: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let statuses: Vec<&str> = msgs.iter().filter_map(|m| m["status"].as_str()).collect();
    for want in [
        "Pulling from progress/busybox",
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ] {
        assert!(statuses.contains(&want), "no {want:?} in {statuses:?}");
    }
    let downloading = msgs
        .iter()
        .find(|m| m["status"] == "Downloading")
        .expect("a Downloading message");
    assert!(downloading["progressDetail"]["total"].as_u64().unwrap_or(0) > 0);
    assert!(downloading["progress"]
        .as_str()
        .unwrap_or("")
        .starts_with('['));
    assert_eq!(downloading["id"].as_str().map(str::len), Some(12));
    assert!(statuses.contains(&format!("Digest: {digest}").as_str()));
    assert!(statuses
        .last()
        .unwrap()
        .starts_with("Status: Downloaded newer image for"));

    // Errors before the stream starts are statuses with Docker's wording.
    let (status, body) = d.api(
        "POST",
        &format!(
            "/images/create?fromImage={}/progress/busybox&tag=nope",
            reg.addr()
        ),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("manifest unknown"), "{body}");
    let out = d.docker(&["pull", &format!("{}/no/such:1", reg.addr())]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Error response from daemon"),
        "{}",
        stderr(&out)
    );
}

fn oci_manifest(config_digest: &str, config_len: usize, layers: &[(&str, &str, usize)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(mt, d, n)| serde_json::json!({"mediaType": mt, "digest": d, "size": n}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_len},
        "layers": layers,
    }))
    .expect("json")
}

#[test]
fn zstd_layers_and_multi_platform_index() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "src/busybox");
    let (config, tar) = pushed_parts(&reg, "src/busybox");
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    assert_eq!(layer_dirs(&d), 0);

    // amd64: the busybox layer as zstd, with its own config (a label makes a new image id).
    let zst = pipe("zstd", &["-q", "-c"], &tar);
    let zdigest = reg.put_blob("multi/app", &zst);
    let mut amd = config.clone();
    amd["config"]["Labels"] = serde_json::json!({"flavour": "zstd"});
    let amd = serde_json::to_vec(&amd).expect("json");
    let amd_cfg = reg.put_blob("multi/app", &amd);
    let amd_manifest = oci_manifest(
        &amd_cfg,
        amd.len(),
        &[(
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &zdigest,
            zst.len(),
        )],
    );
    let amd_digest = reg.put_manifest("multi/app", "amd64", OCI_MANIFEST, &amd_manifest);
    // arm64: a different config over a plain (uncompressed) layer.
    let plain = reg.put_blob("multi/app", &tar);
    let mut arm = config.clone();
    arm["architecture"] = serde_json::json!("arm64");
    let arm = serde_json::to_vec(&arm).expect("json");
    let arm_cfg = reg.put_blob("multi/app", &arm);
    let arm_manifest = oci_manifest(
        &arm_cfg,
        arm.len(),
        &[("application/vnd.oci.image.layer.v1.tar", &plain, tar.len())],
    );
    let arm_digest = reg.put_manifest("multi/app", "arm64", OCI_MANIFEST, &arm_manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": arm_digest, "size": arm_manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": amd_digest, "size": amd_manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }))
    .expect("json");
    let index_digest = reg.put_manifest("multi/app", "latest", OCI_INDEX, &index);

    let app = format!("{}/multi/app", reg.addr());
    let out = d.docker(&["pull", &app]);
    assert_ok(&out, "docker pull multi-platform");
    assert!(
        stdout(&out).contains(&format!("Digest: {index_digest}")),
        "{}",
        stdout(&out)
    );
    assert_eq!(inspect(&d, "{{.Id}}", &app), amd_cfg, "linux/amd64 picked");
    assert_eq!(
        inspect(&d, "{{json .RepoDigests}}", &app),
        format!("[\"{app}@{index_digest}\"]")
    );
    let out = d.docker(&["run", "--rm", &app, "cat", "/etc/passwd"]);
    assert_ok(&out, "docker run zstd image");
    assert!(stdout(&out).contains("root:"), "{}", stdout(&out));

    // --platform picks the other entry; its uncompressed layer is the same diff id.
    let out = d.docker(&[
        "pull",
        "--platform",
        "linux/arm64",
        &format!("{app}:latest"),
    ]);
    assert_ok(&out, "docker pull --platform linux/arm64");
    assert!(stdout(&out).contains("Already exists"), "{}", stdout(&out));
    assert_eq!(inspect(&d, "{{.Id}}", &app), arm_cfg);
    assert_eq!(inspect(&d, "{{.Architecture}}", &app), "arm64");

    let out = d.docker(&["pull", "--platform", "linux/s390x", &app]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{}",
        stderr(&out)
    );
    assert!(staging_files(&d).is_empty());
}

#[test]
fn corrupted_blob_fails_cleanly() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "bad/busybox");
    let m: serde_json::Value =
        serde_json::from_slice(&reg.get_manifest("bad/busybox", "1", DOCKER_MANIFEST)).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let layers_before = layer_dirs(&d);

    // Same size, different bytes: only the digest check can notice.
    let path = reg.blob_data_path(layer.trim_start_matches("sha256:"));
    let mut data = std::fs::read(&path).expect("blob data");
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, &data).expect("corrupt blob");

    let out = d.docker(&["pull", &image]);
    assert!(!out.status.success(), "a corrupted pull must fail");
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        err.contains(&format!(
            "filesystem layer verification failed for digest {layer}"
        )),
        "{err}"
    );
    assert!(
        !d.docker(&["image", "inspect", &image]).status.success(),
        "no image"
    );
    let out = d.docker(&["images", "-q"]);
    assert_eq!(stdout(&out), "", "nothing listed");
    assert_eq!(layer_dirs(&d), layers_before, "no layer kept");
    assert!(staging_files(&d).is_empty(), "{:?}", staging_files(&d));

    // Fix the registry: the same pull now works.
    data[mid] ^= 0xff;
    std::fs::write(&path, &data).expect("restore blob");
    assert_ok(&d.docker(&["pull", &image]), "pull after repair");
    assert_ok(&d.docker(&["run", "--rm", &image, "true"]), "run");
}

#[test]
fn insecure_registry_errors_and_search() {
    let d = Daemon::start();
    // Nothing listens there: a transport error, reported once, nothing stored.
    let port = berth_tests::registry::free_port();
    let out = d.docker(&["pull", &format!("127.0.0.1:{port}/x/y:1")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );

    let reg = TestRegistry::start();
    let out = d.docker(&["search", &format!("{}/busybox", reg.addr())]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not support search"),
        "{}",
        stderr(&out)
    );
    let out = d.berth(&["search", &format!("{}/busybox", reg.addr())]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not support search"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn berth_push_rmi_pull_run() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let archive = busybox_archive();
    assert_ok(
        &d.berth(&["load", "-i", archive.to_str().unwrap()]),
        "berth load",
    );
    let image = format!("{}/berth/busybox:2", reg.addr());
    assert_ok(&d.berth(&["tag", "busybox", &image]), "berth tag");
    let out = d.berth(&["push", &image]);
    assert_ok(&out, "berth push");
    let text = stdout(&out);
    assert!(text.contains("Pushed"), "{text}");
    let digest_line = text
        .lines()
        .find(|l| l.starts_with("2: digest: sha256:"))
        .unwrap_or_else(|| panic!("{text}"));
    let digest = digest_line.split_whitespace().nth(2).unwrap().to_string();

    assert_ok(&d.berth(&["rmi", &image, "busybox"]), "berth rmi");
    let out = d.berth(&["pull", &image]);
    assert_ok(&out, "berth pull");
    let text = stdout(&out);
    assert!(text.contains("Pull complete"), "{text}");
    assert!(text.contains(&format!("Digest: {digest}")), "{text}");
    assert!(text.ends_with(&format!("{image}\n")), "{text}");
    let out = d.berth(&["run", "--rm", &image, "echo", "berth pulled"]);
    assert_ok(&out, "berth run");
    assert_eq!(stdout(&out), "berth pulled\n");

    // -q prints only the reference; by digest works too.
    assert_ok(&d.berth(&["rmi", &image]), "berth rmi");
    let by_digest = format!("{}/berth/busybox@{digest}", reg.addr());
    let out = d.berth(&["pull", "-q", "--platform", "linux/amd64", &by_digest]);
    assert_ok(&out, "berth pull -q by digest");
    assert_eq!(stdout(&out), format!("{by_digest}\n"));

    // -a pulls every tag.
    assert_ok(
        &d.berth(&[
            "tag",
            &by_digest,
            &format!("{}/berth/busybox:3", reg.addr()),
        ]),
        "tag",
    );
    // push -a pushes every local tag of the repository (2 and 3).
    let out = d.berth(&["push", "-a", &format!("{}/berth/busybox", reg.addr())]);
    assert_ok(&out, "berth push -a");
    assert!(
        stdout(&out).contains("3: digest: sha256:"),
        "{}",
        stdout(&out)
    );
    let out = d.berth(&["pull", "-a", &format!("{}/berth/busybox", reg.addr())]);
    assert_ok(&out, "berth pull -a");
    let out = d.berth(&[
        "images",
        "--format",
        "{{.Tag}}",
        &format!("{}/berth/busybox", reg.addr()),
    ]);
    let mut tags: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_string()).collect();
    tags.sort();
    assert_eq!(tags, ["2", "3"], "{}", stdout(&out));

    let out = d.berth(&["pull", &format!("{}/berth/nothing:1", reg.addr())]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Error response from daemon: manifest for"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn registry_dying_mid_pull_leaves_nothing_and_repull_works() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "flaky/busybox");
    let fake = FakeRegistry::start(fake_state(&reg, "flaky/busybox", None));
    drop(reg);
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let layers_before = layer_dirs(&d);

    fake.state().truncate.store(true, Ordering::SeqCst);
    let flaky = format!("{}/flaky/busybox:1", fake.addr());
    let out = d.docker(&["pull", &flaky]);
    assert!(
        !out.status.success(),
        "a pull whose registry keeps dying must fail"
    );
    assert!(
        fake.state().blob_gets.load(Ordering::SeqCst) >= 3,
        "the layer download was retried"
    );
    assert!(
        !d.docker(&["image", "inspect", &flaky]).status.success(),
        "no image"
    );
    assert_eq!(stdout(&d.docker(&["images", "-q"])), "");
    assert_eq!(layer_dirs(&d), layers_before, "no layer kept");
    assert!(staging_files(&d).is_empty(), "{:?}", staging_files(&d));

    // A connection dropped once mid-layer: the download resumes with a range request.
    fake.state().truncate.store(false, Ordering::SeqCst);
    fake.state().truncate_next.store(1, Ordering::SeqCst);
    fake.state().range_gets.store(0, Ordering::SeqCst);
    let out = d.docker(&["pull", &flaky]);
    assert_ok(&out, "re-pull");
    assert_eq!(
        fake.state().range_gets.load(Ordering::SeqCst),
        1,
        "resumed with Range"
    );
    assert_ok(
        &d.docker(&["run", "--rm", &flaky, "true"]),
        "run re-pulled image",
    );

    // A registry that answers the resumed request with the whole blob: the download starts
    // over, and the layer, whose unpacking had read the first half as it arrived, is unpacked
    // again from the finished file.
    assert_ok(&d.docker(&["rmi", &flaky]), "rmi");
    fake.state().ignore_range.store(true, Ordering::SeqCst);
    fake.state().truncate_next.store(1, Ordering::SeqCst);
    fake.state().range_gets.store(0, Ordering::SeqCst);
    let out = d.docker(&["pull", &flaky]);
    assert_ok(&out, "pull from a registry that ignores Range");
    assert_eq!(fake.state().range_gets.load(Ordering::SeqCst), 1);
    assert_eq!(
        ok_trimmed(
            &d.docker(&["run", "--rm", &flaky, "cat", "/etc/hostname"]),
            "run"
        )
        .len(),
        12,
        "the image works"
    );
    assert!(staging_files(&d).is_empty(), "{:?}", staging_files(&d));
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "twice/busybox");
    let fake = FakeRegistry::start(fake_state(&reg, "twice/busybox", None));
    drop(reg);
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let img = format!("{}/twice/busybox:1", fake.addr());
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let a = s.spawn(|| d.docker(&["pull", &img]));
        let b = s.spawn(|| d.berth(&["pull", &img]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for o in &outs {
        assert_ok(o, "concurrent pull");
    }
    assert_eq!(
        fake.state().blob_gets.load(Ordering::SeqCst),
        1,
        "layer fetched once"
    );
    assert_ok(&d.docker(&["run", "--rm", &img, "true"]), "run");

    // A registry with the search API.
    for cli in [DOCKER.as_ref(), bin("berth").as_path()] {
        let out = d.run(cli, &["search", &format!("{}/busy", fake.addr())], None);
        assert_ok(&out, "search");
        let text = stdout(&out);
        assert!(text.starts_with("NAME"), "{text}");
        assert!(
            text.contains("twice/busybox") && text.contains("a test image") && text.contains('7'),
            "{text}"
        );
    }
}

#[test]
fn docker_hub_names_come_from_a_mirror() {
    let reg = TestRegistry::start();
    let d = Daemon::start_with_args(&["--registry-mirror", &format!("http://{}", reg.addr())]);
    // The mirror holds "library/busybox", which is what `busybox` means on Docker Hub.
    let (image, digest) = push_busybox(&d, &reg, "library/busybox");
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let out = d.docker(&["pull", "busybox:1"]);
    assert_ok(&out, "docker pull busybox:1 through the mirror");
    assert!(
        stdout(&out).contains("Status: Downloaded newer image for busybox:1"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("docker.io/library/busybox:1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        inspect(&d, "{{json .RepoDigests}}", "busybox:1"),
        format!("[\"busybox@{digest}\"]")
    );
    assert_ok(&d.docker(&["run", "--rm", "busybox:1", "true"]), "run");
}

#[test]
fn multi_layer_image_pulls_in_parallel_and_reuses_layers() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/make-pull-image.py");
    for (tag, mb) in [("small", "4"), ("other", "6")] {
        let out = Command::new("python3")
            .arg(&script)
            .args([&reg.addr(), &format!("multi/layers:{tag}"), mb, "5"])
            .output()
            .expect("python3");
        assert_ok(&out, "make-pull-image.py");
    }
    let image = format!("{}/multi/layers:small", reg.addr());
    let out = d.docker(&["pull", &image]);
    assert_ok(&out, "docker pull 5 layers");
    assert_eq!(
        stdout(&out).matches("Pull complete").count(),
        5,
        "{}",
        stdout(&out)
    );
    assert_eq!(layer_dirs(&d), 5);
    let out = d.docker(&["run", "--rm", &image, "ls", "/data"]);
    assert_ok(&out, "run");
    assert_eq!(stdout(&out), "blob0\nblob1\nblob2\nblob3\n");
    assert_eq!(
        inspect(&d, "{{len .RootFS.Layers}}", &image),
        "5",
        "every layer recorded"
    );
    // Same busybox bottom layer, different data layers: the bottom one is reused.
    let out = d.docker(&["pull", &format!("{}/multi/layers:other", reg.addr())]);
    assert_ok(&out, "docker pull sharing a layer");
    assert_eq!(
        stdout(&out).matches("Already exists").count(),
        1,
        "{}",
        stdout(&out)
    );
    assert!(staging_files(&d).is_empty(), "{:?}", staging_files(&d));
}

#[test]
fn push_to_another_repository_mounts_the_layer() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "first/busybox");
    let other = format!("{}/second/busybox:1", reg.addr());
    assert_ok(&d.docker(&["tag", &image, &other]), "docker tag");
    let out = d.docker(&["push", &other]);
    assert_ok(&out, "docker push to a second repository");
    assert!(
        stdout(&out).contains("Mounted from first/busybox"),
        "{}",
        stdout(&out)
    );
    // The second repository really has the image.
    let m: serde_json::Value =
        serde_json::from_slice(&reg.get_manifest("second/busybox", "1", DOCKER_MANIFEST)).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(sha256_digest(&reg.get_blob("second/busybox", layer)), layer);
}

#[test]
fn a_bad_layer_among_many_leaves_nothing_behind() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/make-pull-image.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([&reg.addr(), "multi/bad:1", "6", "5"])
        .output()
        .expect("python3");
    assert_ok(&out, "make-pull-image.py");
    let m: serde_json::Value =
        serde_json::from_slice(&reg.get_manifest("multi/bad", "1", DOCKER_MANIFEST)).unwrap();
    // Corrupt the last layer: the ones below download and unpack meanwhile.
    let layer = m["layers"][4]["digest"].as_str().unwrap().to_string();
    let path = reg.blob_data_path(layer.trim_start_matches("sha256:"));
    let mut data = std::fs::read(&path).expect("blob");
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    std::fs::write(&path, &data).expect("corrupt");

    let image = format!("{}/multi/bad:1", reg.addr());
    let out = d.docker(&["pull", &image]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "filesystem layer verification failed for digest {layer}"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        layer_dirs(&d),
        0,
        "layers unpacked before the failure are removed"
    );
    assert!(staging_files(&d).is_empty(), "{:?}", staging_files(&d));
    assert_eq!(stdout(&d.docker(&["images", "-q"])), "");
}

#[test]
fn large_blobs_are_uploaded_in_chunks() {
    let reg = TestRegistry::start();
    let d = Daemon::start_with_args(&["--registry-chunk-size", "65536"]);
    let image = push_busybox_plain(&d, &reg.addr(), "chunked/busybox");
    let log = std::fs::read_to_string(d.root.join("berthd.log")).expect("berthd log");
    let line = log
        .lines()
        .find(|l| l.contains(" chunks of 65536"))
        .unwrap_or_else(|| panic!("no chunked upload in the daemon log:\n{log}"));
    let n: u64 = line
        .split(" in ")
        .last()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("chunk count in {line}"));
    assert!(n > 1, "{line}");
    // The registry has the whole layer under the digest the manifest names.
    let manifest: serde_json::Value =
        serde_json::from_slice(&reg.get_manifest("chunked/busybox", "1", DOCKER_MANIFEST))
            .expect("manifest json");
    let layer = &manifest["layers"][0];
    let blob = reg.get_blob(
        "chunked/busybox",
        layer["digest"].as_str().expect("layer digest"),
    );
    assert_eq!(blob.len() as u64, layer["size"].as_u64().expect("size"));
    assert_eq!(sha256_digest(&blob), layer["digest"].as_str().unwrap());
    assert!(
        blob.len() > 65536,
        "busybox layer should need several chunks"
    );
    rmi_pull_run(&d, &image);
}

/// A build whose `FROM` names an image that is not here pulls it first, as dockerd's builder
/// does; a base the registry lacks fails the build with the registry's answer.
#[test]
fn build_pulls_a_missing_base_image() {
    let reg = TestRegistry::start();
    let d = Daemon::start();
    let (image, _) = push_busybox(&d, &reg, "base/bb");
    assert_ok(&d.docker(&["rmi", &image, "busybox"]), "docker rmi");
    let ctx = d.root.join("from-registry");
    std::fs::create_dir_all(&ctx).expect("context dir");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {image}\nRUN echo built > /built\n"),
    )
    .expect("Dockerfile");
    let out = d.berth(&["build", "-t", "pulled-base:1", &ctx.display().to_string()]);
    assert_ok(&out, "build FROM an image that is only in the registry");
    assert!(
        !inspect(&d, "{{.Id}}", &image).is_empty(),
        "the base was pulled"
    );
    let out = d.docker(&["run", "--rm", "pulled-base:1", "cat", "/built"]);
    assert_ok(&out, "run the built image");
    assert_eq!(stdout(&out), "built\n");

    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/base/nope:1\n", reg.addr()),
    )
    .expect("Dockerfile");
    let out = d.berth(&["build", "-t", "nope:1", &ctx.display().to_string()]);
    assert!(!out.status.success(), "a base the registry lacks");
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(err.contains("base/nope"), "{err}");
}
