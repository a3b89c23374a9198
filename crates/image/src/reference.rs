//! Docker image references, parsed exactly like distribution/reference's
//! `ParseNormalizedNamed` (the parser behind `docker pull NAME`).
//!
//! Grammar (from distribution/reference):
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | IPv4address | \[ IPv6address \]
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex (only sha256 is accepted here)
//! ```
//! Normalisation: a first component counts as a domain only if it contains `.` or `:`,
//! is `localhost`, or has upper-case letters; otherwise the domain is `docker.io`, and a
//! single-component Docker Hub path gets the `library/` prefix. `index.docker.io` is
//! rewritten to `docker.io`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalized, validated image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalize; adds the `latest` tag when neither tag nor digest is given
    /// (what `docker pull`/`docker run` do).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(Self::parse_named(s)?.with_default_tag())
    }

    /// Parse and normalize without adding a default tag.
    pub fn parse_named(s: &str) -> Result<Self> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(Error::InvalidReference(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => remainder.as_str(),
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(Error::ReferenceNotLowercase(remote_name.to_string()));
        }
        parse_full(&domain, &remainder)
    }

    /// Registry domain, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `docker.io/library/busybox` (no tag or digest).
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker shows: `busybox`, `myuser/app`, `127.0.0.1:5000/a`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.full_name()
        }
    }

    /// `busybox:latest`, `busybox@sha256:...`, `busybox:1@sha256:...`.
    pub fn familiar_string(&self) -> String {
        self.render(self.familiar_name())
    }

    /// Same reference with the `latest` tag when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Same repository with a different tag (digest dropped).
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        if !is_valid_tag(tag) {
            return Err(Error::InvalidTagFormat);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// Same repository with only a digest.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// Just the repository (no tag, no digest).
    pub fn repository(&self) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    fn render(&self, name: String) -> String {
        let mut s = name;
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// Full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(self.full_name()))
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, mut remote) = if maybe_domain == "localhost" {
        (maybe_domain.to_string(), maybe_remote.to_string())
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN.to_string(), maybe_remote.to_string())
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        (maybe_domain.to_string(), maybe_remote.to_string())
    } else {
        (DEFAULT_DOMAIN.to_string(), name.to_string())
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// Parse `domain` + `/` + `remainder` (remainder = path[:tag][@digest]).
fn parse_full(domain: &str, remainder: &str) -> Result<Reference> {
    if remainder.is_empty() {
        return Err(Error::InvalidReferenceFormat);
    }
    let (rest, digest) = match remainder.split_once('@') {
        Some((r, d)) => {
            if !is_digest_syntax(d) {
                return Err(Error::InvalidReferenceFormat);
            }
            let digest = Digest::parse(d).map_err(|e| match e {
                Error::InvalidDigest { reason, .. } => Error::InvalidReference(reason.to_string()),
                other => other,
            })?;
            (r, Some(digest))
        }
        None => (remainder, None),
    };
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !is_valid_tag(t) {
            return Err(Error::InvalidReferenceFormat);
        }
    }
    if !is_valid_domain(domain) || path.is_empty() || !path.split('/').all(is_path_component) {
        return Err(Error::InvalidReferenceFormat);
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(Error::InvalidReference(format!(
            "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )));
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && is_alnum_lower(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // separator
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn is_valid_domain(d: &str) -> bool {
    // host[:port]; IPv6 in brackets.
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            a => match a.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.is_empty() && d.starts_with('[') || host.split('.').all(is_domain_component)
}

/// Docker's tag grammar: `[\w][\w.-]{0,127}`.
pub fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

fn is_digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// If `s` looks like an image id or id prefix (`[sha256:]<1..64 lowercase hex>`), return
/// the hex part. Note that short hex strings such as `abc` are also valid repository
/// names; Docker tries an exact name/tag match first and falls back to an id prefix.
pub fn id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (!hex.is_empty()
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

/// True when `s` looks like an image id or a prefix of one (see [`id_prefix`]).
pub fn looks_like_id(s: &str) -> bool {
    id_prefix(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_docker_hub_names() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar_string(), "busybox:latest");

        let r = Reference::parse("myuser/app:1.0").unwrap();
        assert_eq!(r.full_name(), "docker.io/myuser/app");
        assert_eq!(r.familiar_string(), "myuser/app:1.0");

        let r = Reference::parse("index.docker.io/library/ubuntu").unwrap();
        assert_eq!(r.familiar_string(), "ubuntu:latest");
        let r = Reference::parse("docker.io/ubuntu:22.04").unwrap();
        assert_eq!(r.path(), "library/ubuntu");
        let r = Reference::parse_named("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.with_default_tag().tag(), Some("latest"));
    }

    #[test]
    fn registries_ports_and_digests() {
        let r = Reference::parse("localhost:5000/x/y:1").unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "x/y");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.familiar_name(), "localhost:5000/x/y");

        let s = format!("127.0.0.1:5000/a@sha256:{HEX}");
        let r = Reference::parse(&s).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/a");
        assert_eq!(r.to_string(), s);

        let r = Reference::parse(&format!("name:tag@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("tag"));
        assert!(r.digest().is_some());
        assert_eq!(r.familiar_string(), format!("name:tag@sha256:{HEX}"));

        let r = Reference::parse("localhost/foo").unwrap();
        assert_eq!(r.domain(), "localhost");
        let r = Reference::parse("[::1]:5000/foo:bar").unwrap();
        assert_eq!(r.domain(), "[::1]:5000");
        let r = Reference::parse("Registry.Example.COM/foo").unwrap();
        assert_eq!(r.domain(), "Registry.Example.COM");
        let r = Reference::parse("a__b/c-d--e.f_g:V1.0-x_").unwrap();
        assert_eq!(r.path(), "a__b/c-d--e.f_g");
    }

    #[test]
    fn rejects_bad_references() {
        let e = Reference::parse("Busybox").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        for bad in [
            "",
            ":latest",
            "busybox:",
            "busybox:-bad",
            "busybox:.bad",
            "a//b",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "busy box",
            "foo@sha256:abc",
            "foo@",
            "localhost:/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
        assert!(Reference::parse(&format!("a:{}", "t".repeat(128))).is_ok());
        assert_eq!(
            Reference::parse("busybox:bad!").unwrap_err().to_string(),
            "invalid reference format"
        );
        assert!(Reference::parse(HEX)
            .unwrap_err()
            .to_string()
            .contains("cannot specify 64-byte hexadecimal strings"));
        assert!(Reference::parse(&format!("{}/x", "a".repeat(260))).is_err());
        assert!(Reference::parse(&format!("foo@sha512:{HEX}")).is_err());
    }

    #[test]
    fn id_prefixes() {
        assert_eq!(id_prefix("abc123"), Some("abc123"));
        assert_eq!(id_prefix(&format!("sha256:{HEX}")), Some(HEX));
        assert_eq!(id_prefix("busybox"), None);
        assert_eq!(id_prefix("ABC"), None);
        assert_eq!(id_prefix(""), None);
        assert!(!looks_like_id(&format!("{HEX}0")));
    }
}
