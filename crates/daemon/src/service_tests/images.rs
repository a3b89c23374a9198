//! Images through the image store: import, tag, list, history, inspect, remove, and the
//! conflicts of an image a container uses.

use berth_api_types::image::DeleteItem;
use berth_api_types::ErrorKind;
use berth_services::ImageListOptions;

use crate::host::testkit::{TestDaemon, IMAGE};

/// Imports a one-file root filesystem (`file` holding `data`) as `repo:tag`.
async fn import(t: &TestDaemon, repo: &str, tag: &str, file: &str, data: &[u8], msg: &str) {
    t.import(repo, tag, file, data, msg, "ENV A=b").await;
}

fn tags(t: &TestDaemon) -> Vec<String> {
    let mut all: Vec<String> =
        t.d.image_list(ImageListOptions::default())
            .unwrap()
            .into_iter()
            .flat_map(|s| s.repo_tags)
            .collect();
    all.sort();
    all
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:")[..12].to_string()
}

#[tokio::test]
async fn an_imported_image_is_listed_and_inspected() {
    let t = TestDaemon::new().await;
    import(&t, "other", "v1", "data.txt", b"x", "imported by a test").await;
    assert_eq!(tags(&t), ["img:latest", "other:v1"]);
    let i = t.d.image_inspect("other:v1").expect("inspect");
    assert!(i.id.starts_with("sha256:"), "{}", i.id);
    assert_eq!(i.repo_tags, ["other:v1"]);
    assert_eq!(i.comment, "imported by a test");
    assert_eq!(i.root_fs.layers.len(), 1);
    let env = i.config.env.clone().unwrap_or_default();
    assert!(env.contains(&"A=b".to_string()), "{env:?}");
    let events = t.actions_of(&i.id).await;
    assert!(events.contains(&"image import".to_string()), "{events:?}");
}

#[tokio::test]
async fn image_tag_adds_a_name_and_remove_of_one_tag_only_untags() {
    let t = TestDaemon::new().await;
    t.d.image_tag(IMAGE, "alias", "v2").await.expect("tag");
    assert_eq!(tags(&t), ["alias:v2", "img:latest"]);
    let a = t.d.image_inspect("alias:v2").unwrap().id;
    assert_eq!(a, t.d.image_inspect(IMAGE).unwrap().id);
    let items = t.d.image_remove("alias:v2", false, false).await.unwrap();
    assert_eq!(items, [DeleteItem::Untagged("alias:v2".into())]);
    assert_eq!(tags(&t), ["img:latest"]);
    let actions = t.actions_of(&a).await;
    assert!(actions.contains(&"image tag".to_string()), "{actions:?}");
}

#[tokio::test]
async fn removing_by_id_with_two_tags_must_be_forced() {
    let t = TestDaemon::new().await;
    t.d.image_tag(IMAGE, "second", "latest").await.unwrap();
    let id = t.d.image_inspect(IMAGE).unwrap().id;
    let e = t.d.image_remove(&id, false, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        e.message,
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&id)
        )
    );
    let items = t.d.image_remove(&id, true, false).await.expect("forced");
    assert!(
        items.contains(&DeleteItem::Untagged("img:latest".into())),
        "{items:?}"
    );
    assert!(
        items.contains(&DeleteItem::Deleted(id.clone())),
        "{items:?}"
    );
    assert!(tags(&t).is_empty());
}

#[tokio::test]
async fn an_image_a_stopped_container_uses_cannot_be_removed_unforced() {
    let t = TestDaemon::new().await;
    let cid = t.create("user", |_| {}).await;
    let id = t.d.image_inspect(IMAGE).unwrap().id;
    let e = t.d.image_remove(IMAGE, false, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        e.message,
        format!(
            "conflict: unable to remove repository reference \"{IMAGE}\" (must force) - container {} is using its referenced image {}",
            &cid[..12],
            short(&id)
        )
    );
    // Forced: the tag goes, the image stays for the container.
    let items = t.d.image_remove(IMAGE, true, false).await.unwrap();
    assert_eq!(items, [DeleteItem::Untagged(IMAGE.into())]);
    assert!(t.d.image_inspect(&id).is_ok());
}

#[tokio::test]
async fn an_image_a_running_container_uses_cannot_be_removed_even_forced() {
    let t = TestDaemon::new().await;
    let cid = t.run("user", |_| {}).await;
    let id = t.d.image_inspect(IMAGE).unwrap().id;
    let e = t.d.image_remove(&id, true, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        e.message,
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            short(&id),
            &cid[..12]
        )
    );
    assert_eq!(tags(&t), ["img:latest"]);
}

#[tokio::test]
async fn removing_the_last_tag_deletes_the_image_and_its_layer() {
    let t = TestDaemon::new().await;
    import(&t, "gone", "1", "f", b"y", "").await;
    let id = t.d.image_inspect("gone:1").unwrap().id;
    let items = t.d.image_remove("gone:1", false, false).await.unwrap();
    assert_eq!(items.first(), Some(&DeleteItem::Untagged("gone:1".into())));
    assert!(
        items.contains(&DeleteItem::Deleted(id.clone())),
        "{items:?}"
    );
    let e = t.d.image_inspect("gone:1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "No such image: gone:1");
    let actions = t.actions_of(&id).await;
    assert!(actions.contains(&"image delete".to_string()), "{actions:?}");
}

#[tokio::test]
async fn image_history_lists_the_import_step() {
    let t = TestDaemon::new().await;
    import(&t, "hist", "1", "f", b"12345", "the comment").await;
    let h = t.d.image_history("hist:1").expect("history");
    assert!(!h.is_empty());
    let first = &h[0];
    assert_eq!(first.tags, ["hist:1"]);
    assert_eq!(first.comment, "the comment");
    assert!(first.id.starts_with("sha256:"), "{}", first.id);
    let e = t.d.image_history("nope:1").unwrap_err();
    assert_eq!(e.message, "No such image: nope:1");
}

#[tokio::test]
async fn image_list_counts_the_containers_using_an_image_and_filters() {
    let t = TestDaemon::new().await;
    import(&t, "spare", "1", "f", b"z", "").await;
    t.create("ca", |_| {}).await;
    let list =
        t.d.image_list(ImageListOptions {
            all: false,
            filters: vec![("reference".into(), vec!["spare".into()])],
        })
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].repo_tags, ["spare:1"]);
    let dangling =
        t.d.image_list(ImageListOptions {
            all: false,
            filters: vec![("dangling".into(), vec!["true".into()])],
        })
        .unwrap();
    assert!(dangling.is_empty());
}

#[tokio::test]
async fn create_of_a_missing_image_is_not_found() {
    let t = TestDaemon::new().await;
    let mut req = berth_api_types::container::CreateRequest::default();
    req.config.image = "missing:1".into();
    let e = t.create_req("xx", req).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "No such image: missing:1");
    assert!(t.d.get("xx").is_none());
}
