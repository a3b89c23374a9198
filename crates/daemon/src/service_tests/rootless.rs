//! A rootless daemon over the fakes: published ports also go through the port driver (whose
//! lease ends with the container), UDP and driver failures refuse the start, limits are
//! refused without cgroups, and `info` says rootless.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use berth_api_types::container::{HostConfig, PortBinding, PortMap};

use crate::host::testkit::{TestDaemon, BIP, BRIDGE};
use crate::model::Status;
use crate::rootless::{PortDriver, PortDriverError, RootlessConfig};

/// Records every `expose`; hands out one end of a socket pair as the lease and keeps the
/// other, so a test sees when the daemon lets go of it.
#[derive(Debug, Default)]
struct RecordingDriver {
    calls: Mutex<Vec<(String, IpAddr, u16, SocketAddr)>>,
    peers: Mutex<Vec<UnixStream>>,
    fail: Mutex<Option<String>>,
}

impl PortDriver for RecordingDriver {
    fn expose(
        &self,
        proto: &str,
        host_ip: IpAddr,
        host_port: u16,
        target: SocketAddr,
    ) -> Result<OwnedFd, PortDriverError> {
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(PortDriverError::Refused(e));
        }
        self.calls
            .lock()
            .unwrap()
            .push((proto.to_string(), host_ip, host_port, target));
        let (ours, theirs) = UnixStream::pair().map_err(|source| PortDriverError::Unreachable {
            socket: "socketpair".into(),
            source,
        })?;
        self.peers.lock().unwrap().push(theirs);
        Ok(OwnedFd::from(ours))
    }
}

async fn rootless(driver: Arc<RecordingDriver>, cgroups: bool) -> TestDaemon {
    TestDaemon::with(crate::host::fake::FakeHost::new(), move |cfg| {
        cfg.bridge = BRIDGE.into();
        cfg.bip = BIP.into();
        cfg.rootless = Some(RootlessConfig {
            port_driver: driver,
            cgroups,
            controllers: if cgroups {
                ["cpuset", "cpu", "io", "memory", "pids"]
                    .map(String::from)
                    .to_vec()
            } else {
                Vec::new()
            },
            host_cgroup_v2: false,
        });
    })
    .await
}

fn publish(hc: &mut HostConfig, key: &str) {
    hc.network_mode = "bridge".into();
    let mut map = PortMap::new();
    map.insert(
        key.into(),
        Some(vec![PortBinding {
            host_ip: "127.0.0.1".into(),
            host_port: String::new(),
        }]),
    );
    hc.port_bindings = Some(map);
}

#[tokio::test]
async fn a_published_port_is_exposed_on_the_host_until_the_container_exits() {
    let driver = Arc::new(RecordingDriver::default());
    let t = rootless(driver.clone(), false).await;
    let id = t.run("web", |hc| publish(hc, "80/tcp")).await;
    let calls = driver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (proto, ip, port, target) = calls[0].clone();
    assert_eq!(proto, "tcp");
    assert_eq!(ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(target, "10.77.0.2:80".parse::<SocketAddr>().unwrap());
    // The same port the container shows (and the DNAT rule inside the namespace uses).
    let s = super::inspect(&t, &id);
    assert_eq!(
        s["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    // The lease is held while the container runs, and let go when it exits.
    let peer = driver.peers.lock().unwrap().pop().unwrap();
    peer.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    use std::io::Read;
    assert!(
        (&peer).read(&mut buf).is_err(),
        "lease closed while running"
    );
    t.fake.shim(&id).unwrap().exit(0);
    t.wait_status(&id, Status::Exited).await;
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    assert_eq!((&peer).read(&mut buf).unwrap(), 0, "lease still held");
}

#[tokio::test]
async fn udp_is_exposed_and_driver_failures_refuse_the_start() {
    let driver = Arc::new(RecordingDriver::default());
    let t = rootless(driver.clone(), false).await;
    t.run("dns", |hc| publish(hc, "53/udp")).await;
    let calls = driver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, "udp");
    assert_eq!(calls[0].3, "10.77.0.2:53".parse::<SocketAddr>().unwrap());
    let launched = t.fake.count("launch_shim");

    *driver.fail.lock().unwrap() = Some("cannot expose privileged port 80".into());
    let id = t.create("web", |hc| publish(hc, "80/tcp")).await;
    let e = t.d.container_start(&id).await.unwrap_err();
    assert!(
        e.message.contains("cannot expose privileged port 80"),
        "{}",
        e.message
    );
    assert_eq!(t.fake.count("launch_shim"), launched);
    assert_ne!(t.status(&id), Status::Running);
}

#[tokio::test]
async fn limits_need_cgroups_and_info_says_rootless() {
    let t = rootless(Arc::new(RecordingDriver::default()), false).await;
    let req = |memory: i64| berth_api_types::container::CreateRequest {
        config: berth_api_types::container::Config {
            image: crate::host::testkit::IMAGE.into(),
            ..Default::default()
        },
        host_config: Some(HostConfig {
            network_mode: "none".into(),
            memory,
            ..HostConfig::default()
        }),
        ..Default::default()
    };
    let e =
        t.d.container_create(Some("big".into()), req(64 << 20))
            .await
            .unwrap_err();
    assert_eq!(
        e.message,
        "cannot set memory limit: container could not join or create cgroup"
    );
    assert!(t
        .d
        .container_create(Some("small".into()), req(0))
        .await
        .is_ok());
    let info = t.d.info();
    assert!(info.security_options.contains(&"name=rootless".to_string()));
    assert_eq!(info.cgroup_driver, "none");
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("Running in rootless-mode without cgroups")),
        "{:?}",
        info.warnings
    );

    // With delegated cgroups the limit is the kernel's business again.
    let t = rootless(Arc::new(RecordingDriver::default()), true).await;
    assert!(t
        .d
        .container_create(Some("big".into()), req(64 << 20))
        .await
        .is_ok());
    assert_eq!(t.d.info().cgroup_driver, "cgroupfs");
}
