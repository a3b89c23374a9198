//! Acceptance 3: the same scenarios through `berth`.

use berth_tests::scenarios::{self, Cli};
use berth_tests::*;

#[test]
fn run_exit_codes_stdin_and_tty() {
    let d = Daemon::start();
    scenarios::run_basics(&d, Cli::Berth);
}

#[test]
fn detached_container_lifecycle() {
    let d = Daemon::start();
    d.load_busybox();
    scenarios::detached_lifecycle(&d, Cli::Berth);
}

#[test]
fn save_and_load_keep_the_image_id() {
    let d = Daemon::start();
    d.load_busybox();
    scenarios::save_and_load(&d, Cli::Berth);
}

#[test]
fn version_and_info() {
    let d = Daemon::start();
    assert_ok(&d.berth(&["version"]), "berth version");
    let out = d.berth(&["info"]);
    assert_ok(&out, "berth info");
    assert!(stdout(&out).contains("overlay2"), "{}", stdout(&out));
}

#[test]
fn pause_and_unpause() {
    let d = Daemon::start();
    d.load_busybox();
    assert_ok(
        &d.berth(&["run", "-d", "--name", "pp", "busybox", "sleep", "100"]),
        "run -d",
    );
    let out = d.berth(&["pause", "pp"]);
    assert_ok(&out, "berth pause");
    assert_eq!(stdout(&out), "pp\n");
    let out = d.berth(&["inspect", "-f", "{{.State.Status}}", "pp"]);
    assert_eq!(stdout(&out), "paused\n");
    assert!(
        !d.berth(&["pause", "pp"]).status.success(),
        "pausing twice fails"
    );
    assert_ok(
        &d.berth(&["container", "unpause", "pp"]),
        "berth container unpause",
    );
    let out = d.berth(&["inspect", "-f", "{{.State.Status}}", "pp"]);
    assert_eq!(stdout(&out), "running\n");
    assert_ok(&d.berth(&["rm", "-f", "pp"]), "rm -f");
}
