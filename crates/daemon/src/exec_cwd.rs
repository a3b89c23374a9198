//! `docker exec -w <dir>`: a working directory missing from the container is refused with
//! runc's message, as Docker prints it, before the shim is asked to start the process.

use std::os::fd::AsFd;
use std::path::Path;

use berth_api_types::ErrorKind;

use crate::errors::{into_api_error, Classified};

/// The working directory is not a directory in the container; runc's words, as dockerd passes
/// them on (a 500, as dockerd answers).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"{cwd}\") set in config.json failed: {reason}: unknown"
)]
pub(crate) struct BadCwd {
    cwd: String,
    /// "no such file or directory" or "not a directory".
    reason: &'static str,
}

impl Classified for BadCwd {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

into_api_error!(BadCwd);

/// Checks that `cwd` is a directory inside the filesystem tree rooted at `root` (for a running
/// container `/proc/<pid>/root`, which sees its volumes and binds too), resolving it as the
/// container would (symlinks and `..` stay inside). `Err` carries Docker's message; a root
/// that cannot be opened is not this check's business (`Ok`).
pub(crate) fn check(root: &Path, cwd: &str) -> Result<(), BadCwd> {
    let Ok(root_dir) = std::fs::File::open(root) else {
        return Ok(());
    };
    match crate::sys::open_in_root(
        root_dir.as_fd(),
        Path::new(cwd),
        libc::O_PATH | libc::O_DIRECTORY,
    ) {
        Ok(_) => Ok(()),
        Err(e) => {
            let reason = match e.raw_os_error() {
                Some(libc::ENOENT) => "no such file or directory",
                Some(libc::ENOTDIR) => "not a directory",
                _ => return Ok(()),
            };
            Err(BadCwd {
                cwd: cwd.to_string(),
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_directories_are_refused_with_runcs_message() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("srv/app")).unwrap();
        std::fs::write(root.path().join("file"), b"x").unwrap();
        std::os::unix::fs::symlink("/srv", root.path().join("link")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        for ok in ["/", "/srv/app", "/link/app", "/up/srv", "/srv/../srv/app/"] {
            assert_eq!(check(root.path(), ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check(root.path(), "/nonexist").unwrap_err().to_string(),
            "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/nonexist\") set in config.json failed: no such file or directory: unknown"
        );
        assert!(check(root.path(), "/file")
            .unwrap_err()
            .to_string()
            .contains("failed: not a directory: unknown"));
        // A host path that exists outside the root is still missing inside it.
        let outside = root.path().join("srv");
        assert!(check(&root.path().join("srv/app"), outside.to_str().unwrap()).is_err());
    }
}
