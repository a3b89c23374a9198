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
    /// What the daemon was opened with (a second daemon over the same dirs reuses it).
    pub cfg: DaemonConfig,
}

/// The image every test container runs.
pub(crate) const IMAGE: &str = "img:latest";

/// The default bridge of [`TestDaemon::with_bridge`] and its address.
pub(crate) const BRIDGE: &str = "berth-t0";
pub(crate) const BIP: &str = "10.77.0.1/16";

/// Docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, big-endian length) as frames.
pub(crate) fn demux(mut raw: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        let end = (8 + len).min(raw.len());
        out.push((raw[0], String::from_utf8_lossy(&raw[8..end]).into_owned()));
        raw = &raw[end..];
    }
    out
}

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
        let d = Daemon::open_with(cfg.clone(), fake.host())
            .await
            .expect("daemon over fakes");
        let t = TestDaemon { d, fake, dir, cfg };
        t.import_image().await;
        t
    }

    /// A daemon over the fakes with a default bridge ([`BRIDGE`], [`BIP`]).
    pub(crate) async fn with_bridge() -> TestDaemon {
        TestDaemon::with(FakeHost::new(), |cfg| {
            cfg.bridge = BRIDGE.into();
            cfg.bip = BIP.into();
        })
        .await
    }

    /// A second daemon over the same directories and fakes, as berthd restarted (the shims
    /// of the first one stay as they are).
    pub(crate) async fn reopen(&self) -> Arc<Daemon> {
        Daemon::open_with(self.cfg.clone(), self.fake.host())
            .await
            .expect("daemon reopened over fakes")
    }

    /// Creates a container from a full request (image [`IMAGE`] unless it names one).
    pub(crate) async fn create_req(
        &self,
        name: &str,
        mut req: CreateRequest,
    ) -> crate::Result<String> {
        if req.config.image.is_empty() {
            req.config.image = IMAGE.into();
        }
        self.d
            .container_create(Some(name.to_string()), req)
            .await
            .map(|r| r.id)
    }

    /// The OCI spec the last start wrote into the container's bundle.
    pub(crate) fn spec(&self, id: &str) -> serde_json::Value {
        let path = self.d.runtime.bundle_dir(id).join("config.json");
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&body).expect("config.json")
    }

    /// The `linux.namespaces` entry of type `typ` in the spec the container was started with.
    pub(crate) fn spec_namespace(&self, id: &str, typ: &str) -> serde_json::Value {
        let spec = self.spec(id);
        spec["linux"]["namespaces"]
            .as_array()
            .expect("linux.namespaces")
            .iter()
            .find(|n| n["type"] == typ)
            .cloned()
            .unwrap_or_else(|| panic!("no {typ} namespace in {spec}"))
    }

    /// Every event so far, as `GET /events?since=0&until=now` gives them.
    pub(crate) async fn events(&self) -> Vec<serde_json::Value> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let opts = berth_services::EventsOptions {
            since: Some(0.0),
            until: Some(now + 0.001),
            ..Default::default()
        };
        let mut stream = self.d.events(opts).expect("events");
        let mut text = Vec::new();
        let read = async {
            while let Some(chunk) = stream.next().await {
                text.extend_from_slice(&chunk.expect("event chunk"));
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("the event stream ends at `until`");
        serde_json::Deserializer::from_slice(&text)
            .into_iter::<serde_json::Value>()
            .map(|v| v.expect("event json"))
            .collect()
    }

    /// The `Type Action` of every event about `id` (a container, network, volume or image).
    pub(crate) async fn actions_of(&self, id: &str) -> Vec<String> {
        self.events()
            .await
            .iter()
            .filter(|m| m["Actor"]["ID"] == id)
            .map(|m| {
                format!(
                    "{} {}",
                    m["Type"].as_str().unwrap_or(""),
                    m["Action"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// A container's logs (not followed), demultiplexed: (stream, text) per frame.
    pub(crate) async fn logs(
        &self,
        id: &str,
        opts: berth_services::LogsOptions,
    ) -> Vec<(u8, String)> {
        let (_tty, mut stream) = self.d.container_logs(id, opts).expect("logs");
        let mut raw = Vec::new();
        let read = async {
            while let Some(chunk) = stream.next().await {
                raw.extend_from_slice(&chunk.expect("log chunk"));
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("logs end when not followed");
        demux(&raw)
    }

    /// Imports a root filesystem of one file as [`IMAGE`].
    async fn import_image(&self) {
        self.import(
            "img",
            "latest",
            "etc/motd",
            b"hello\n",
            "",
            "CMD [\"/bin/app\"]",
        )
        .await;
    }

    /// Imports a root filesystem of one file (`file` holding `data`, owned by the caller, so
    /// that an unprivileged test can unpack it) as `repo:tag`, with one Dockerfile `change`.
    pub(crate) async fn import(
        &self,
        repo: &str,
        tag: &str,
        file: &str,
        data: &[u8],
        message: &str,
        change: &str,
    ) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        b.append_data(&mut h, file, data).expect("tar entry");
        let tar = b.into_inner().expect("tar");
        let body: berth_services::ByteStream = Box::pin(futures_util::stream::once(async move {
            Ok::<_, std::io::Error>(bytes::Bytes::from(tar))
        }));
        let opts = berth_services::ImportOptions {
            repo: repo.into(),
            tag: tag.into(),
            message: message.into(),
            changes: vec![change.into()],
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
