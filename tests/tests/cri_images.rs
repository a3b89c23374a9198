//! The CRI ImageService of berthd against a private Debian `docker-registry` on 127.0.0.1:
//! PullImage (by tag, untagged, by digest, with credentials), ImageStatus by every kind of
//! reference, ListImages, RemoveImage (all tags, idempotent), ImageFsInfo — and that images
//! pulled through the CRI are Docker's images too.

use berth_tests::cri::*;
use berth_tests::registry::TestRegistry;
use berth_tests::*;

fn spec(image: &str) -> Option<api::ImageSpec> {
    Some(api::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

async fn image_status(c: &mut CriClient, image: &str) -> Option<api::Image> {
    c.img
        .image_status(api::ImageStatusRequest {
            image: spec(image),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
}

async fn pull(
    c: &mut CriClient,
    image: &str,
    auth: Option<api::AuthConfig>,
) -> Result<String, tonic::Status> {
    c.img
        .pull_image(api::PullImageRequest {
            image: spec(image),
            auth,
            sandbox_config: None,
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

/// Pushes the local busybox as `<registry>/<repo>:<tag>` with the docker CLI, then removes
/// the local tags, so only a pull brings it back.
fn push(d: &Daemon, reg: &TestRegistry, repo: &str, tag: &str) -> String {
    let image = format!("{}/{repo}:{tag}", reg.addr());
    assert_ok(&d.docker(&["tag", "busybox", &image]), "docker tag");
    assert_ok(&d.docker(&["push", &image]), "docker push");
    assert_ok(&d.docker(&["rmi", &image]), "docker rmi");
    image
}

#[tokio::test]
async fn pull_status_list_remove() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let reg = TestRegistry::start();
    let d = Daemon::start();
    d.load_busybox();
    let image = push(&d, &reg, "cri/busybox", "1");
    push(&d, &reg, "cri/busybox", "latest");
    assert_ok(&d.docker(&["rmi", "busybox"]), "docker rmi busybox");
    let mut c = CriClient::connect(&d.cri_socket()).await;
    assert!(image_status(&mut c, &image).await.is_none());

    // By tag: the answer is the image id; Docker sees the image under the same name.
    let id = pull(&mut c, &image, None).await.expect("PullImage");
    assert!(id.starts_with("sha256:"), "{id}");
    let out = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_ok(&out, "docker images");
    assert!(
        stdout(&out).contains(&format!("{image} {}", &id[7..19])),
        "{}",
        stdout(&out)
    );
    let st = image_status(&mut c, &image).await.expect("pulled image");
    assert_eq!(st.id, id);
    assert_eq!(st.repo_tags, vec![image.clone()]);
    assert!(st.size > 0);
    assert_eq!(st.uid.map(|u| u.value), Some(0), "busybox runs as root");
    let digest_ref = st.repo_digests.first().expect("repo digest").clone();
    // Every kind of reference finds it: id, short id, digest reference.
    for r in [id.as_str(), &id[7..19], digest_ref.as_str()] {
        assert_eq!(
            image_status(&mut c, r).await.map(|i| i.id),
            Some(id.clone()),
            "{r}"
        );
    }

    // Untagged means latest; by digest works too.
    let untagged = format!("{}/cri/busybox", reg.addr());
    assert_eq!(pull(&mut c, &untagged, None).await.unwrap(), id);
    let st = image_status(&mut c, &id).await.unwrap();
    let mut tags = st.repo_tags.clone();
    tags.sort();
    assert_eq!(tags, vec![image.clone(), format!("{untagged}:latest")]);
    assert_eq!(pull(&mut c, &digest_ref, None).await.unwrap(), id);

    // ListImages: all, and filtered by a reference.
    let all = c
        .img
        .list_images(api::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(all.len(), 1, "{all:?}");
    let some = c
        .img
        .list_images(api::ListImagesRequest {
            filter: Some(api::ImageFilter {
                image: spec(&image),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(some.len(), 1);

    let fs = c
        .img
        .image_fs_info(api::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let used = fs.image_filesystems[0].used_bytes.as_ref().unwrap().value;
    assert!(used >= st.size, "{used} < {}", st.size);

    // A missing image or registry is an error, not a hang.
    let e = pull(&mut c, &format!("{}/cri/nothere:1", reg.addr()), None)
        .await
        .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);

    // RemoveImage by one tag removes every tag; again is fine.
    for _ in 0..2 {
        c.img
            .remove_image(api::RemoveImageRequest {
                image: spec(&image),
            })
            .await
            .expect("RemoveImage");
    }
    assert!(image_status(&mut c, &id).await.is_none());
    assert!(!d.docker(&["image", "inspect", &untagged]).status.success());
}

#[tokio::test]
async fn pull_with_credentials() {
    if !is_root() {
        return;
    }
    let reg = TestRegistry::start_with_htpasswd("kube", "s3cret");
    let d = Daemon::start();
    d.load_busybox();
    let out = d.docker_stdin(
        &["login", "-u", "kube", "--password-stdin", &reg.addr()],
        b"s3cret",
    );
    assert_ok(&out, "docker login");
    let image = push(&d, &reg, "auth/busybox", "1");
    assert_ok(&d.docker(&["logout", &reg.addr()]), "docker logout");
    let mut c = CriClient::connect(&d.cri_socket()).await;
    let e = pull(&mut c, &image, None).await.unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);
    let auth = api::AuthConfig {
        username: "kube".into(),
        password: "s3cret".into(),
        server_address: reg.addr(),
        ..Default::default()
    };
    let id = pull(&mut c, &image, Some(auth))
        .await
        .expect("pull with auth");
    assert_eq!(image_status(&mut c, &image).await.unwrap().id, id);
}
