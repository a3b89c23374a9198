//! The build context of `POST /build`: the uploaded tar (plain or compressed, as the
//! docker CLI sends it) unpacked into a directory, `.dockerignore` applied, the Dockerfile
//! read, and berth's named contexts (`--build-context`) split off.

use std::path::Path;

/// Why the uploaded context could not be used; the build's error message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error("reading build context: {0}")]
    Decompress(berth_image::Error),
    #[error("reading build context: {0}")]
    Read(std::io::Error),
    /// The tar crate wraps the cause of a failed unpack: all of it is shown.
    #[error("unpacking build context: {}", with_causes(.0))]
    Unpack(std::io::Error),
    #[error("moving named build contexts: {0}")]
    MoveNamed(std::io::Error),
    #[error("named build contexts: {0}")]
    Named(std::io::Error),
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
}

/// Unpacks the (optionally compressed) context tar into `dir`, drops what `.dockerignore`
/// excludes, and returns the Dockerfile's text.
/// With `named` set, the named contexts the berth CLI sent under
/// `.berth-build-contexts/` are moved there first (the main `.dockerignore` is not theirs).
pub(crate) fn unpack_context(
    reader: impl std::io::Read,
    dir: &Path,
    dockerfile: &str,
    named: Option<&Path>,
) -> std::result::Result<String, ContextError> {
    let decoded = berth_image::store::decompress(reader).map_err(ContextError::Decompress)?;
    let mut ar = tar::Archive::new(ZeroPad {
        inner: decoded,
        pad: 0,
    });
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let entries = ar.entries().map_err(ContextError::Read)?;
    for entry in entries {
        let mut entry = entry.map_err(ContextError::Read)?;
        // unpack_in refuses paths that would leave `dir`.
        entry.unpack_in(dir).map_err(ContextError::Unpack)?;
    }
    if let Some(to) = named {
        let from = dir.join(crate::build_options::CONTEXTS_DIR);
        if from.is_dir() {
            std::fs::rename(&from, to).map_err(ContextError::MoveNamed)?;
        } else {
            std::fs::create_dir_all(to).map_err(ContextError::Named)?;
        }
    }
    let rel = berth_builder::copy::clean_rel(dockerfile);
    let mut path = dir.join(&rel);
    if !path.exists() && dockerfile == "Dockerfile" {
        path = dir.join("dockerfile");
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|_| ContextError::NoDockerfile(dockerfile.to_string()))?;
    if let Ok(ign) = std::fs::read_to_string(dir.join(".dockerignore")) {
        let ignore = berth_builder::Ignore::parse(&ign);
        if !ignore.is_empty() {
            prune(dir, dir, &ignore);
        }
    }
    Ok(text)
}

/// The docker CLI's `-f -` rewrites the context tar and ends it right after the last file's
/// data, without the block padding and end-of-archive blocks. Docker's reader accepts that;
/// reading zeros after the end makes the tar crate see a proper end too.
struct ZeroPad<R> {
    inner: R,
    pad: usize,
}

impl<R: std::io::Read> std::io::Read for ZeroPad<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pad == 0 {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
        }
        let room = (3 * 512usize).saturating_sub(self.pad).min(buf.len());
        buf[..room].fill(0);
        self.pad += room;
        Ok(room)
    }
}

/// Removes excluded files; an excluded directory goes whole unless an exception may apply
/// below it.
fn prune(root: &Path, dir: &Path, ignore: &berth_builder::Ignore) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let excluded = ignore.excluded(&rel);
        if is_dir {
            if excluded && !ignore.may_include_below(&rel) {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                prune(root, &p, ignore);
                if excluded
                    && std::fs::read_dir(&p)
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false)
                {
                    let _ = std::fs::remove_dir(&p);
                }
            }
        } else if excluded {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// An error with its causes (the tar crate keeps the system error, e.g. `no space left on
/// device`, behind its own message).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)], pad: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let mut raw = b.into_inner().unwrap();
        if !pad {
            // What the docker CLI sends for `-f -`: no padding after the last file's data,
            // no end-of-archive blocks.
            let last = files.last().unwrap().1.len();
            let data_end = raw.len() - 1024 - (512 - last % 512) % 512;
            raw.truncate(data_end);
        }
        raw
    }

    #[test]
    fn context_unpack_applies_dockerignore_and_finds_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let raw = tar_of(
            &[
                ("Dockerfile", "FROM scratch\n"),
                ("a.log", "x"),
                ("keep.log", "x"),
                ("dir/sub/b.log", "x"),
                ("dir/code.rs", "x"),
                ("node_modules/m/index.js", "x"),
                (".dockerignore", "**/*.log\n!keep.log\nnode_modules\n"),
            ],
            false,
        );
        let text = unpack_context(&raw[..], d.path(), "Dockerfile", None).unwrap();
        assert_eq!(text, "FROM scratch\n");
        let exists = |p: &str| d.path().join(p).exists();
        assert!(exists("keep.log") && exists("dir/code.rs") && exists("Dockerfile"));
        assert!(!exists("a.log") && !exists("dir/sub/b.log") && !exists("node_modules"));
    }

    #[test]
    fn gzip_context_and_missing_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        let raw = tar_of(&[("sub/Build.file", "FROM x\n")], true);
        let mut gz = gzip_of(&raw);
        let text = unpack_context(&mut gz, d.path(), "sub/Build.file", None).unwrap();
        assert_eq!(text, "FROM x\n");
        let e = tempfile::tempdir().unwrap();
        let err = unpack_context(&raw[..], e.path(), "Dockerfile", None)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Cannot locate specified Dockerfile: Dockerfile");
    }

    /// A gzip'd context, as `docker build` sends with `--compress` (made with the `gzip`
    /// binary: the daemon crate has no gzip encoder dependency).
    fn gzip_of(raw: &[u8]) -> std::io::Cursor<Vec<u8>> {
        use std::io::Write;
        let mut child = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let out = child.wait_with_output().unwrap();
        std::io::Cursor::new(out.stdout)
    }
}
