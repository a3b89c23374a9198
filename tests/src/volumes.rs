//! Helpers the volume, bind and `docker cp` test files share.

use std::path::PathBuf;
use std::process::Output;

use crate::{assert_ok, stdout, Daemon};

/// Asserts `o` succeeded and returns its stdout.
pub fn quiet_ok(o: &Output, what: &str) -> String {
    assert_ok(o, what);
    stdout(o)
}

/// A temp directory under the daemon's root (removed with it).
pub fn scratch(d: &Daemon, name: &str) -> PathBuf {
    let p = d.root.join("scratch").join(name);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}
