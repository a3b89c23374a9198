//! The CRI image service over the daemon's image store: the same store and registry client
//! as `docker images`/`docker pull`, so images pulled through the CRI are Docker's too.

use async_trait::async_trait;
use base64::Engine;
use berth_api_types::ErrorKind;
use berth_cri::api;
use berth_cri::backend::ImageBackend;
use berth_cri::types::{FsInfo, PullImage, RegistryAuth, WithInfo};
use berth_cri::{CriError, CriResult};
use berth_services::{ImageListOptions, PullOptions};

use super::{cri_err, now_nanos, PodService};

/// `user` of an image config as the CRI reports it: a numeric uid, or a name.
fn uid_or_name(user: &str) -> (Option<i64>, String) {
    let u = user.split(':').next().unwrap_or_default();
    match u.parse::<i64>() {
        Ok(n) => (Some(n), String::new()),
        Err(_) if u.is_empty() => (Some(0), String::new()),
        Err(_) => (None, u.to_string()),
    }
}

/// The `X-Registry-Auth` value of the kubelet's credentials.
fn auth_header(a: &RegistryAuth) -> String {
    let body = serde_json::json!({
        "username": a.username,
        "password": a.password,
        "auth": a.auth,
        "serveraddress": a.server_address,
        "identitytoken": a.identity_token,
        "registrytoken": a.registry_token,
    });
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

impl PodService {
    /// The bytes the CRI's containers hold in their writable layers.
    fn containers_layer_bytes(&self) -> u64 {
        self.store
            .containers()
            .iter()
            .map(|c| crate::sys::dir_size(&self.daemon.runtime.upper_dir(&c.id)))
            .sum()
    }

    fn image_of(&self, name: &str) -> CriResult<Option<api::Image>> {
        let i = match self.daemon.image_inspect(name) {
            Ok(i) => i,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cri_err("image", name, e)),
        };
        let (uid, username) = uid_or_name(&i.config.user);
        Ok(Some(api::Image {
            id: i.id.clone(),
            repo_tags: i.repo_tags,
            repo_digests: i.repo_digests,
            size: u64::try_from(i.size).unwrap_or(0),
            uid: uid.map(|value| api::Int64Value { value }),
            username,
            spec: Some(api::ImageSpec {
                image: i.id,
                ..Default::default()
            }),
            pinned: false,
        }))
    }
}

#[async_trait]
impl ImageBackend for PodService {
    async fn list_images(&self, filter: Option<&api::ImageSpec>) -> CriResult<Vec<api::Image>> {
        if let Some(f) = filter.filter(|f| !f.image.is_empty()) {
            return Ok(self.image_of(&f.image)?.into_iter().collect());
        }
        let all = self
            .daemon
            .image_list(ImageListOptions::default())
            .map_err(|e| CriError::Internal(e.message))?;
        let mut out = Vec::new();
        for s in all {
            if let Some(i) = self.image_of(&s.id)? {
                out.push(i);
            }
        }
        Ok(out)
    }

    async fn image_status(
        &self,
        image: &api::ImageSpec,
        verbose: bool,
    ) -> CriResult<Option<WithInfo<api::Image>>> {
        let Some(status) = self.image_of(&image.image)? else {
            return Ok(None);
        };
        let mut info = std::collections::HashMap::new();
        if verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({ "id": status.id, "size": status.size }).to_string(),
            );
        }
        Ok(Some(WithInfo { status, info }))
    }

    async fn pull_image(&self, req: PullImage) -> CriResult<String> {
        let name = req.image.image.clone();
        let opts = PullOptions {
            from_image: name.clone(),
            tag: String::new(),
            platform: String::new(),
            registry_auth: req.auth.as_ref().map(auth_header),
        };
        // An untagged reference means `latest` (a Docker pull of it would fetch every tag).
        let opts = match berth_image::reference::Reference::parse_named(&name) {
            Ok(r) if r.tag().is_none() && r.digest().is_none() => PullOptions {
                tag: "latest".into(),
                ..opts
            },
            Ok(_) => opts,
            Err(e) => return Err(CriError::invalid("image.image", e.to_string())),
        };
        let pulled = self
            .daemon
            .pull_to_end(opts)
            .await
            .map_err(|e| cri_err("image", &name, e))?;
        if let Err(e) = pulled {
            return Err(CriError::Internal(format!("pulling {name}: {e}")));
        }
        let pulled = if name.contains('@') || has_tag(&name) {
            name.clone()
        } else {
            format!("{name}:latest")
        };
        let image = self
            .image_of(&pulled)?
            .ok_or_else(|| CriError::Internal(format!("{name} is missing after its pull")))?;
        tracing::debug!(image = %name, id = %image.id, at = now_nanos(), "CRI pull done");
        Ok(image.id)
    }

    async fn remove_image(&self, image: &api::ImageSpec) -> CriResult<()> {
        let Some(i) = self.image_of(&image.image)? else {
            return Err(CriError::not_found("image", &image.image));
        };
        self.daemon
            .image_remove(&i.id, true, false)
            .await
            .map(|_| ())
            .map_err(|e| cri_err("image", &image.image, e))
    }

    async fn image_fs_info(&self) -> CriResult<FsInfo> {
        let dir = self.daemon.cfg.data_root.join("image");
        let used: u64 = self
            .daemon
            .image_list(ImageListOptions::default())
            .map(|v| v.iter().map(|s| u64::try_from(s.size).unwrap_or(0)).sum())
            .unwrap_or(0);
        let usage = api::FilesystemUsage {
            timestamp: now_nanos(),
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: dir.display().to_string(),
            }),
            used_bytes: Some(api::UInt64Value { value: used }),
            inodes_used: None,
        };
        let containers = api::FilesystemUsage {
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: self
                    .daemon
                    .cfg
                    .data_root
                    .join("containers")
                    .display()
                    .to_string(),
            }),
            used_bytes: Some(api::UInt64Value {
                value: self.containers_layer_bytes(),
            }),
            ..usage.clone()
        };
        Ok(FsInfo {
            image_filesystems: vec![usage],
            container_filesystems: vec![containers],
        })
    }
}

/// Whether a reference names a tag (a `:` after the last `/`).
fn has_tag(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_tags() {
        assert_eq!(uid_or_name(""), (Some(0), String::new()));
        assert_eq!(uid_or_name("1000:1000"), (Some(1000), String::new()));
        assert_eq!(uid_or_name("nobody"), (None, "nobody".to_string()));
        assert!(has_tag("127.0.0.1:5000/busybox:1"));
        assert!(!has_tag("127.0.0.1:5000/busybox"));
    }
}
