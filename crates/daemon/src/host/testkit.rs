//! A daemon over the fake kernel, for unit tests of the services: its own temporary data and
//! exec roots, no default bridge, and a one-file image imported as `img:latest`.

use std::sync::Arc;
use std::time::Duration;

use berth_api_types::container::{Config, CreateRequest, HostConfig};
use futures_util::StreamExt;

use super::fake::FakeHost;
use crate::model::Status;
use crate::{Daemon, DaemonConfig};

pub(crate) struct TestDaemon {
    pub d: Arc<Daemon>,
    pub fake: Arc<FakeHost>,
    pub dir: tempfile::TempDir,
}

/// The image every test container runs.
pub(crate) const IMAGE: &str = "img:latest";

impl TestDaemon {
    pub(crate) async fn new() -> TestDaemon {
        let fake = FakeHost::new();
        TestDaemon::with(fake, |_| {}).await
    }

    /// A daemon over `fake`, its config changed by `tweak` first.
    pub(crate) async fn with(
        fake: Arc<FakeHost>,
        tweak: impl FnOnce(&mut DaemonConfig),
    ) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let cgroups = dir.path().join("cgroup");
        std::fs::create_dir_all(&cgroups).expect("cgroup dir");
        fake.set_cgroup_root(&cgroups);
        let mut cfg = DaemonConfig {
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            shim_path: "/nonexistent/berth-shim".into(),
            cgroup_parent: format!(
                "berth-unit-{}",
                &crate::network::stable_id(&dir.path().display().to_string())[..8]
            ),
            bridge: "none".into(),
            log_config: berth_api_types::container::LogConfig {
                kind: "json-file".into(),
                config: Default::default(),
            },
            ..DaemonConfig::default()
        };
        tweak(&mut cfg);
        let d = Daemon::open_with(cfg, fake.host())
            .await
            .expect("daemon over fakes");
        let t = TestDaemon { d, fake, dir };
        t.import_image().await;
        t
    }

    /// Imports a root filesystem of one file as [`IMAGE`].
    async fn import_image(&self) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let data = b"hello\n";
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        b.append_data(&mut h, "etc/motd", &data[..])
            .expect("tar entry");
        let tar = b.into_inner().expect("tar");
        let body: berth_services::ByteStream = Box::pin(futures_util::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from(tar))
        }));
        let opts = berth_services::ImportOptions {
            repo: "img".into(),
            tag: "latest".into(),
            message: String::new(),
            changes: vec!["CMD [\"/bin/app\"]".into()],
        };
        let mut out = self.d.image_import(body, opts).await.expect("import");
        let mut text = Vec::new();
        while let Some(chunk) = out.next().await {
            text.extend_from_slice(&chunk.expect("import progress"));
        }
        assert!(
            !String::from_utf8_lossy(&text).contains("error"),
            "import: {}",
            String::from_utf8_lossy(&text)
        );
    }

    /// Creates a container of [`IMAGE`] named `name`, its host config changed by `hc`.
    pub(crate) async fn create(&self, name: &str, hc: impl FnOnce(&mut HostConfig)) -> String {
        let mut req = CreateRequest {
            config: Config {
                image: IMAGE.into(),
                ..Config::default()
            },
            ..CreateRequest::default()
        };
        let mut host_config = HostConfig {
            network_mode: "none".into(),
            ..HostConfig::default()
        };
        hc(&mut host_config);
        req.host_config = Some(host_config);
        self.d
            .container_create(Some(name.to_string()), req)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {}", e.message))
            .id
    }

    /// Creates and starts a container.
    pub(crate) async fn run(&self, name: &str, hc: impl FnOnce(&mut HostConfig)) -> String {
        let id = self.create(name, hc).await;
        self.d
            .container_start(&id)
            .await
            .unwrap_or_else(|e| panic!("start {name}: {}", e.message));
        id
    }

    pub(crate) fn status(&self, id: &str) -> Status {
        self.d.get(id).expect("container").state.status
    }

    /// Waits (up to 5 s) until the container is in `want`.
    pub(crate) async fn wait_status(&self, id: &str, want: Status) {
        for _ in 0..500 {
            if self.d.get(id).is_some_and(|c| c.state.status == want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{id} never became {want:?}: {:?}",
            self.d.get(id).map(|c| c.state.status)
        );
    }

    /// Waits (up to 5 s) until the container is gone.
    pub(crate) async fn wait_gone(&self, id: &str) {
        for _ in 0..500 {
            if self.d.get(id).is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{id} was never removed");
    }
}
