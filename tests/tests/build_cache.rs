//! Issue 3: a build's step images are real (untagged) images, as with Docker's legacy
//! builder — `docker images -a`, `.Parent`, `docker rmi` removing the chain — and the build
//! cache that `docker system df` counts and `docker builder prune` empties.

use std::path::PathBuf;

use berth_tests::*;

fn context(d: &Daemon, name: &str, dockerfile: &str) -> PathBuf {
    let dir = d.root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write");
    dir
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert_ok(out, what);
    stdout(out)
}

/// The ` ---> <id>` lines that end each step, in order.
fn step_ids(build_output: &str) -> Vec<String> {
    build_output
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|l| l.len() == 12 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn step_images_are_intermediate_images() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "im",
        "FROM busybox\nRUN echo a > /a\nENV X=1\nRUN echo b > /b\n",
    );
    let path = ctx.to_str().expect("utf-8");
    let out = ok(&d.docker(&["build", "-t", "im:1", path]), "build");
    let ids = step_ids(&out);
    assert_eq!(ids.len(), 4, "FROM, RUN, ENV, RUN: {out}");
    let busybox = ok(&d.docker(&["images", "-q", "busybox"]), "images")
        .trim()
        .to_string();
    assert_eq!(ids[0], busybox);

    // `docker images` hides the intermediate steps; `-a` lists them as <none>.
    let plain = ok(&d.docker(&["images", "-q"]), "images");
    assert_eq!(
        sorted_lines(&plain),
        sorted_lines(&format!("{busybox}\n{}\n", ids[3]))
    );
    let all = ok(&d.docker(&["images", "-a", "-q"]), "images -a");
    assert_eq!(
        sorted_lines(&all),
        sorted_lines(&(ids.join("\n") + "\n")),
        "{all}"
    );
    let names = ok(
        &d.docker(&[
            "images",
            "-a",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ]),
        "images -a --format",
    );
    for id in &ids[1..3] {
        assert!(names.contains(&format!("{id} <none>:<none>")), "{names}");
    }
    // Intermediate images are not dangling: they have children.
    let dangling = ok(
        &d.docker(&["images", "-q", "-f", "dangling=true"]),
        "dangling",
    );
    assert!(dangling.trim().is_empty(), "{dangling}");

    // The parent chain runs step by step down to the base image, which has none.
    let mut chain = Vec::new();
    let mut cur = "im:1".to_string();
    loop {
        let p = ok(
            &d.docker(&["inspect", "-f", "{{.Parent}}", &cur]),
            "inspect",
        );
        let p = p.trim().to_string();
        if p.is_empty() {
            break;
        }
        chain.push(p.trim_start_matches("sha256:")[..12].to_string());
        cur = p;
    }
    assert_eq!(
        chain,
        [ids[2].clone(), ids[1].clone(), ids[0].clone()],
        "Parent chain"
    );
    let api = d.docker(&["image", "ls", "-a", "--format", "{{.ID}}"]);
    assert_ok(&api, "image ls");

    // A step image other images are built on cannot be removed by itself.
    let busy = d.docker(&["rmi", &ids[2]]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("image has dependent child images"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );

    // A rebuild reuses the step images.
    let again = ok(&d.docker(&["build", "-t", "im:1", path]), "rebuild");
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    assert_eq!(step_ids(&again), ids);

    // Removing the image removes the steps only it needed, newest first.
    let now = unix_now;
    let since = format!("{:.3}", now() - 1.0);
    let rmi = ok(&d.docker(&["rmi", "im:1"]), "rmi");
    let until = format!("{:.3}", now() + 1.0);
    let events = ok(
        &d.docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=image",
            "--filter",
            "event=delete",
            "--format",
            "{{.ID}}",
        ]),
        "events",
    );
    for id in &ids[1..] {
        assert!(
            events.contains(id.as_str()),
            "a delete event for {id}: {events}"
        );
    }
    assert_eq!(events.lines().count(), 3, "{events}");
    let deleted: Vec<&str> = rmi
        .lines()
        .filter_map(|l| l.strip_prefix("Deleted: sha256:"))
        .collect();
    for id in &ids[1..] {
        assert!(
            deleted.iter().any(|x| x.starts_with(id.as_str())),
            "{id} in {rmi}"
        );
    }
    let pos = |id: &str| {
        deleted
            .iter()
            .position(|x| x.starts_with(id))
            .expect("deleted")
    };
    assert!(
        pos(&ids[3]) < pos(&ids[2]) && pos(&ids[2]) < pos(&ids[1]),
        "{rmi}"
    );
    assert!(!deleted.iter().any(|x| x.starts_with(&busybox)), "{rmi}");
    let all = ok(&d.docker(&["images", "-a", "-q"]), "images -a");
    assert_eq!(all.trim(), busybox, "only the base image is left");

    // With the step images gone, nothing is cached any more.
    let fresh = ok(&d.docker(&["build", "-t", "im:1", path]), "build after rmi");
    assert_eq!(fresh.matches("Using cache").count(), 0, "{fresh}");
    assert_eq!(
        ok(
            &d.docker(&["run", "--rm", "im:1", "cat", "/a", "/b"]),
            "run"
        ),
        "a\nb\n"
    );
}

/// `docker commit` records the container's image as the new image's parent.
#[test]
fn commit_records_the_parent() {
    let d = Daemon::start();
    d.load_busybox();
    ok(
        &d.docker(&["run", "--name", "c1", "busybox", "touch", "/x"]),
        "run",
    );
    let id = ok(&d.docker(&["commit", "c1", "cm:1"]), "commit");
    let busybox = ok(
        &d.docker(&["inspect", "-f", "{{.Id}}", "busybox"]),
        "inspect",
    );
    let parent = ok(
        &d.docker(&["inspect", "-f", "{{.Parent}}", "cm:1"]),
        "inspect",
    );
    assert_eq!(parent.trim(), busybox.trim(), "commit {id}");
    ok(&d.docker(&["rm", "c1"]), "rm");
    // Removing cm:1 takes only cm:1: its parent is tagged, so it stays.
    let rmi = ok(&d.docker(&["rmi", "cm:1"]), "rmi");
    assert!(
        rmi.contains(id.trim().trim_start_matches("sha256:")),
        "{rmi}"
    );
    assert!(
        !rmi.contains(busybox.trim()),
        "the tagged base stays: {rmi}"
    );
}

/// `docker system df` counts the cache entries and what only the cache keeps (an earlier
/// stage's steps); `docker builder prune` removes exactly that and keeps the steps of
/// tagged images.
#[test]
fn builder_prune_frees_what_only_the_cache_keeps() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        "bc",
        "FROM busybox AS s\nRUN head -c 300000 /dev/zero > /a\nRUN echo s > /s\nFROM busybox\nRUN echo b > /b\nENV Y=2\nCOPY --from=s /s /s\n",
    );
    let path = ctx.to_str().expect("utf-8");
    let out = ok(&d.docker(&["build", "-t", "bc:1", path]), "build");
    let ids = step_ids(&out);
    assert_eq!(ids.len(), 7, "{out}");
    // The first stage's result is a dangling image, as with Docker's legacy builder.
    let dangling = ok(
        &d.docker(&["images", "-q", "-f", "dangling=true"]),
        "dangling",
    );
    assert_eq!(dangling.trim(), ids[2], "{dangling}");

    let df = ok(
        &d.docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}}|{{.TotalCount}}|{{.Size}}|{{.Reclaimable}}",
        ]),
        "system df",
    );
    let row = df
        .lines()
        .find(|l| l.starts_with("Build Cache|"))
        .unwrap_or_else(|| panic!("{df}"));
    let f: Vec<&str> = row.split('|').collect();
    let verbose = ok(&d.docker(&["system", "df", "-v"]), "system df -v");
    assert_eq!(
        f[1], "5",
        "one entry per step but FROM: {row}\n{verbose}\n{out}"
    );
    assert!(
        f[3].starts_with("300"),
        "the first stage's layer is reclaimable: {row}"
    );
    let verbose = ok(&d.docker(&["system", "df", "-v"]), "system df -v");
    let rows: Vec<&str> = verbose
        .lines()
        .filter(|l| l.contains(" regular "))
        .collect();
    assert_eq!(rows.len(), 5, "{verbose}");
    assert_eq!(
        rows.iter()
            .filter(|l| l.trim_end().ends_with("false"))
            .count(),
        2,
        "the first stage's two steps are not shared: {verbose}"
    );

    let pruned = ok(&d.docker(&["builder", "prune", "-f"]), "builder prune");
    assert!(pruned.contains("Total reclaimed space: 300"), "{pruned}");
    let df = ok(
        &d.docker(&["system", "df", "--format", "{{.Type}}|{{.TotalCount}}"]),
        "system df",
    );
    assert!(df.contains("Build Cache|0"), "{df}");
    // The stage's images are gone; bc:1 and the steps it was built on stay.
    let all = ok(&d.docker(&["images", "-a", "-q"]), "images -a");
    let all = sorted_lines(&all);
    let mut want: Vec<String> = vec![
        ids[0].clone(),
        ids[4].clone(),
        ids[5].clone(),
        ids[6].clone(),
    ];
    want.sort();
    assert_eq!(all, want);
    assert_eq!(
        ok(
            &d.docker(&["run", "--rm", "bc:1", "cat", "/s", "/b"]),
            "run"
        ),
        "s\nb\n"
    );
    // The next build runs the steps again.
    let again = ok(&d.docker(&["build", "-t", "bc:1", path]), "rebuild");
    assert!(again.contains("Running in"), "{again}");
    assert!(all_free_of_build_containers(&d));
}

fn all_free_of_build_containers(d: &Daemon) -> bool {
    ok(&d.docker(&["ps", "-aq"]), "ps").trim().is_empty()
}
