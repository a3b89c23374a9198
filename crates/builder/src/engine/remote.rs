//! `ADD` sources that are not in a context: URLs (downloaded by the daemon, with its proxy
//! settings) and git repositories (cloned with the `git` command, which uses the daemon's
//! environment too: `HTTP(S)_PROXY`, `NO_PROXY`).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use super::{fail, Backend, BuildError, Fetched};

/// What kind of `ADD` source a word is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remote {
    Url(String),
    Git(GitSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitSource {
    /// What `git clone` is given.
    pub url: String,
    /// Branch, tag or commit (`#ref`); `None`: the default branch.
    pub reference: Option<String>,
    /// `#ref:subdir`.
    pub subdir: Option<String>,
}

/// Classifies an `ADD` source: a git repository (`file://`, `git://`, `git@host:`,
/// `ssh://`, or an http(s) URL ending in `.git`, each with an optional `#ref[:subdir]`),
/// another http(s) URL, or `None` for a context path.
pub(crate) fn classify(s: &str) -> Option<Remote> {
    let (base, fragment) = match s.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (s, None),
    };
    let is_http = s.starts_with("http://") || s.starts_with("https://");
    let is_git = s.starts_with("file://")
        || s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("ssh://")
        || (is_http && base.trim_end_matches('/').ends_with(".git"));
    if is_git {
        let (reference, subdir) = match fragment {
            Some(f) => match f.split_once(':') {
                Some((r, d)) => (r, Some(d)),
                None => (f, None),
            },
            None => ("", None),
        };
        return Some(Remote::Git(GitSource {
            url: base.to_string(),
            reference: (!reference.is_empty()).then(|| reference.to_string()),
            subdir: subdir.filter(|d| !d.is_empty()).map(str::to_string),
        }));
    }
    is_http.then(|| Remote::Url(s.to_string()))
}

/// The file name an `ADD <url> dir/` gets: the last segment of the URL's path.
pub(crate) fn url_file_name(url: &str) -> Result<String, BuildError> {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(url)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let name = path
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(fail(format!(
            "cannot determine filename from url: {url}: give the destination a file name"
        )));
    }
    Ok(name.to_string())
}

/// `sha256:<hex>` of a file.
fn file_digest(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Downloads a URL into `dir`, checking `--checksum` when given.
pub(crate) async fn fetch_url(
    backend: &dyn Backend,
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
) -> Result<Fetched, BuildError> {
    let fetched = backend
        .fetch(url, dir)
        .await
        .map_err(|e| fail(format!("ADD failed: {e}")))?;
    if let Some(want) = checksum {
        if !want.starts_with("sha256:") {
            return Err(fail(format!(
                "ADD --checksum={want}: berth verifies sha256 digests only (sha256:<hex>)"
            )));
        }
        let path = fetched.path.clone();
        let got = tokio::task::spawn_blocking(move || file_digest(&path))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(format!("ADD failed: reading {url}: {e}")))?;
        if got != want {
            return Err(fail(format!(
                "ADD failed: digest mismatch for {url}: expected {want}, got {got}"
            )));
        }
    }
    Ok(fetched)
}

/// A `git` command of an `ADD <git url>` that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GitError {
    #[error("running git (is it installed?): {0}")]
    Spawn(std::io::Error),
    /// git's own complaint (its stderr, trimmed).
    #[error("{0}")]
    Failed(String),
}

fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(std::process::Stdio::null());
    let out = c.output().map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Clones a git source into `dir`; returns the directory to copy (the checkout, or its
/// `subdir`) and the commit. `checksum` is a commit id the checkout must match.
pub(crate) fn clone_git(
    src: &GitSource,
    dir: &Path,
    keep_git_dir: bool,
    checksum: Option<&str>,
) -> Result<(PathBuf, String), BuildError> {
    if src.url.starts_with("git@") || src.url.starts_with("ssh://") {
        return Err(fail(format!(
            "ADD {}: git over SSH needs an SSH agent, which berth's ADD does not use; use an https:// or file:// URL",
            src.url
        )));
    }
    let repo = dir.join("repo");
    let repo_s = repo.to_string_lossy().into_owned();
    let err = |what: &str, e: GitError| fail(format!("ADD failed: git {what} {}: {e}", src.url));
    git(
        None,
        &["clone", "--quiet", "--no-checkout", &src.url, &repo_s],
    )
    .map_err(|e| err("clone", e))?;
    let commit = match &src.reference {
        None => git(Some(&repo), &["rev-parse", "--verify", "HEAD^{commit}"]),
        Some(r) => git(
            Some(&repo),
            &["rev-parse", "--verify", &format!("origin/{r}^{{commit}}")],
        )
        .or_else(|_| {
            git(
                Some(&repo),
                &["rev-parse", "--verify", &format!("{r}^{{commit}}")],
            )
        }),
    }
    .map_err(|e| {
        fail(format!(
            "ADD failed: git checkout of {}: no such ref: {e}",
            src.url
        ))
    })?;
    if let Some(want) = checksum {
        if want.len() < 7 || !commit.starts_with(want) {
            return Err(fail(format!(
                "ADD failed: {}: expected commit {want}, got {commit}",
                src.url
            )));
        }
    }
    git(Some(&repo), &["checkout", "--quiet", "--detach", &commit])
        .map_err(|e| err("checkout of", e))?;
    let mut sub = vec!["submodule", "update", "--init", "--recursive", "--quiet"];
    if src.url.starts_with("file://") {
        sub.splice(0..0, ["-c", "protocol.file.allow=always"]);
    }
    git(Some(&repo), &sub).map_err(|e| err("submodules of", e))?;
    if !keep_git_dir {
        let _ = std::fs::remove_dir_all(repo.join(".git"));
    }
    let root = match &src.subdir {
        Some(d) => crate::copy::in_root(&repo, d),
        None => repo,
    };
    if !root.is_dir() {
        return Err(fail(format!(
            "ADD failed: {}: no directory {} in the repository",
            src.url,
            src.subdir.as_deref().unwrap_or("/")
        )));
    }
    Ok((root, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sources() {
        assert_eq!(classify("a/b.txt"), None);
        assert_eq!(
            classify("https://example.com/x.tar.gz"),
            Some(Remote::Url("https://example.com/x.tar.gz".into()))
        );
        let Some(Remote::Git(g)) = classify("https://example.com/r.git#v1:docs") else {
            panic!("not git")
        };
        assert_eq!(g.url, "https://example.com/r.git");
        assert_eq!(g.reference.as_deref(), Some("v1"));
        assert_eq!(g.subdir.as_deref(), Some("docs"));
        let Some(Remote::Git(g)) = classify("file:///srv/repo") else {
            panic!("not git")
        };
        assert_eq!((g.reference, g.subdir), (None, None));
        assert!(matches!(
            classify("git@github.com:a/b.git"),
            Some(Remote::Git(_))
        ));
    }

    #[test]
    fn url_names() {
        assert_eq!(url_file_name("http://h/a/b.txt?x=1").unwrap(), "b.txt");
        assert_eq!(url_file_name("http://h:8/f").unwrap(), "f");
        assert!(url_file_name("http://h/").is_err());
        assert!(url_file_name("http://h").is_err());
    }

    #[test]
    fn clones_local_repositories() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("docs")).unwrap();
        let run = |args: &[&str]| git(Some(&src), args).unwrap();
        run(&["init", "--quiet", "-b", "main"]);
        std::fs::write(src.join("docs/a.txt"), "one").unwrap();
        run(&["add", "."]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "1",
        ]);
        let first = run(&["rev-parse", "HEAD"]);
        run(&["tag", "v1"]);
        std::fs::write(src.join("docs/a.txt"), "two").unwrap();
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-am",
            "2",
        ]);
        let url = format!("file://{}", src.display());
        let g = |f: &str| match classify(&format!("{url}{f}")) {
            Some(Remote::Git(g)) => g,
            _ => panic!("not git"),
        };
        let out = d.path().join("o1");
        std::fs::create_dir(&out).unwrap();
        let (root, commit) = clone_git(&g("#v1:docs"), &out, false, None).unwrap();
        assert_eq!(commit, first);
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "one");
        assert!(!out.join("repo/.git").exists());
        let out = d.path().join("o2");
        std::fs::create_dir(&out).unwrap();
        let (root, _) = clone_git(&g(""), &out, true, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("docs/a.txt")).unwrap(),
            "two"
        );
        assert!(root.join(".git").is_dir(), "--keep-git-dir");
        let out = d.path().join("o3");
        std::fs::create_dir(&out).unwrap();
        let e = clone_git(&g("#main"), &out, false, Some("0000000")).unwrap_err();
        assert!(
            e.message.contains("expected commit 0000000"),
            "{}",
            e.message
        );
        let out = d.path().join("o4");
        std::fs::create_dir(&out).unwrap();
        assert!(clone_git(&g("#nope"), &out, false, None).is_err());
    }
}
