//! docker-compose 1.29 (Debian's `docker-compose`, on Debian's python3-docker), unchanged,
//! against berthd: the project in tests/compose (user networks with aliases and fixed subnets,
//! a named volume, a port published on loopback, a healthcheck-gated `depends_on`, an image
//! built by compose with build args, extra hosts, a network mode and cache_from) driven through
//! `up --build --scale`, `ps`, `exec`, `run`, `logs -f`, a scale-down and `down -v`. Skipped
//! with a message when docker-compose is not installed (scripts/install-deps.sh installs it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::*;

const PROJECT: &str = "berthct";

struct Compose<'a> {
    d: &'a Daemon,
    file: PathBuf,
    env: Vec<(String, String)>,
}

impl Compose<'_> {
    fn args<'b>(&'b self, args: &[&'b str]) -> Vec<&'b str> {
        let mut all = vec![
            "--ansi",
            "never",
            "-p",
            PROJECT,
            "-f",
            self.file.to_str().expect("utf8 path"),
        ];
        all.extend_from_slice(args);
        all
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.d.run_env_for(
            Path::new("docker-compose"),
            &self.args(args),
            &self.env(),
            None,
            Duration::from_secs(120),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_ok(&out, &format!("docker-compose {}", args.join(" ")));
        stdout(&out)
    }
}

/// `GET path` on 127.0.0.1:`port`: the body, or None when nothing answers (yet).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn docker_compose_project() {
    if !is_root() {
        return;
    }
    let has_compose = Command::new("docker-compose")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_compose {
        eprintln!("skipping: docker-compose is not installed (apt-get install docker-compose)");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let port = free_port();
    let c = Compose {
        d: &d,
        file: Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/docker-compose.yml"),
        env: vec![
            ("WEB_PORT".into(), port.to_string()),
            ("FRONT_SUBNET".into(), d.spare_subnet(0)),
            ("BACK_SUBNET".into(), d.spare_subnet(1)),
            ("COMPOSE_HTTP_TIMEOUT".into(), "120".into()),
            // Debian's compose needs Debian's docker SDK (5.x): a newer one pip put into
            // /usr/local for the same interpreter must not shadow it.
            ("PYTHONPATH".into(), "/usr/lib/python3/dist-packages".into()),
        ],
    };
    let name = |svc: &str, i: u32| format!("{PROJECT}_{svc}_{i}");

    // up: builds web's image, creates networks and the volume, starts db, waits for its
    // health, then starts web and two workers.
    c.ok(&["up", "-d", "--build", "--scale", "worker=2"]);
    let mut value = None;
    assert!(
        eventually(Duration::from_secs(20), || {
            value = http_get(port, "/value");
            value.is_some()
        }),
        "web did not answer on 127.0.0.1:{port}\n{}",
        c.ok(&["logs", "--no-color"])
    );
    assert_eq!(value.as_deref(), Some("db-data\n"));
    // The image compose built: its build arg, its extra host, its network mode (none: only lo).
    assert_eq!(
        http_get(port, "/greeting").as_deref(),
        Some("built-by-compose\n")
    );
    assert_eq!(http_get(port, "/buildhost").as_deref(), Some("10.9.8.7\n"));
    assert_eq!(http_get(port, "/netdevs").as_deref(), Some("lo\n"));
    println!("ok up build ports");

    // depends_on with condition service_healthy: web started only after db turned healthy
    // (the daemon's own event order).
    let db = name("db", 1);
    let web = name("web", 1);
    assert_eq!(inspect(&d, &db, "{{.State.Health.Status}}"), "healthy");
    // An explicit fractional `--until`: the CLI turns `0s` into whole seconds, which leaves out
    // the events of the current second (web's start, a moment ago).
    let until = events_until_now();
    let out = d.docker(&[
        "events",
        "--since",
        "5m",
        "--until",
        &until,
        "--filter",
        &format!("container={db}"),
        "--filter",
        &format!("container={web}"),
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_ok(&out, "events");
    let events = stdout(&out);
    let at = |line: &str| events.lines().position(|l| l == line);
    let healthy = at(&format!("health_status: healthy {db}"));
    let started = at(&format!("start {web}"));
    assert!(
        healthy.is_some() && started.is_some() && healthy < started,
        "web did not wait for db's health:\n{events}"
    );
    // Networks and aliases as compose asked for them.
    let nets = inspect(
        &d,
        &web,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert_eq!(nets, format!("{PROJECT}_back {PROJECT}_front"));
    let aliases = inspect(
        &d,
        &db,
        &format!("{{{{json (index .NetworkSettings.Networks \"{PROJECT}_back\").Aliases}}}}"),
    );
    for a in ["database", "store", "db"] {
        assert!(aliases.contains(&format!("\"{a}\"")), "{a} in {aliases}");
    }
    let subnet = inspect(
        &d,
        &format!("{PROJECT}_back"),
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
    );
    assert_eq!(subnet, d.spare_subnet(1));
    let mounts = inspect(
        &d,
        &db,
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
    );
    assert_eq!(mounts, format!("volume {PROJECT}_dbdata /data"));
    println!("ok health networks volume");

    // A second `up` finds everything up to date (compose compares its config hash labels).
    let again = c.run(&["up", "-d", "--scale", "worker=2"]);
    assert_ok(&again, "second up");
    let said = stderr(&again);
    assert!(
        said.contains(&format!("{db} is up-to-date")) && !said.contains("Recreating"),
        "second up changed something:\n{said}"
    );
    let workers = lines(&c.ok(&["ps", "-q", "worker"]));
    assert_eq!(workers.len(), 2, "{workers:?}");
    let ps = c.ok(&["ps"]);
    for n in [&db, &web, &name("worker", 1), &name("worker", 2)] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(n.as_str()))
            .unwrap_or_else(|| panic!("{n} not in ps:\n{ps}"));
        assert!(line.contains("Up"), "{line}");
    }
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    println!("ok up-to-date ps");

    // exec (no TTY): through the other alias; into the second worker by index.
    let out = c.ok(&[
        "exec",
        "-T",
        "web",
        "wget",
        "-qO-",
        "http://store:5432/value",
    ]);
    assert_eq!(out, "db-data\n");
    let out = c.ok(&["exec", "-T", "--index=2", "worker", "hostname"]);
    let second = inspect(&d, &name("worker", 2), "{{.Config.Hostname}}");
    assert_eq!(out.trim(), second);
    let failed = c.run(&["exec", "-T", "web", "sh", "-c", "exit 7"]);
    assert_eq!(failed.status.code(), Some(7), "{}", stderr(&failed));
    println!("ok exec");

    // run: a one-off container of the service on its networks, removed afterwards.
    let out = c.ok(&[
        "run",
        "--rm",
        "-T",
        "worker",
        "wget",
        "-qO-",
        "http://database:5432/value",
    ]);
    assert_eq!(out, "db-data\n");
    let out = c.ok(&[
        "run",
        "--rm",
        "-T",
        "-e",
        "X=from-run",
        "db",
        "sh",
        "-c",
        "echo $X; cat /data/value",
    ]);
    assert_eq!(out, "from-run\ndb-data\n");
    let left = stdout(&d.docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.oneoff=True",
    ]));
    assert!(left.trim().is_empty(), "one-off containers left: {left}");
    println!("ok run");

    // logs -f follows both workers until they stop, then ends by itself.
    let mut follow = Command::new("docker-compose")
        .args(c.args(&["logs", "-f", "--no-color", "worker"]))
        .env("DOCKER_HOST", d.host())
        .envs(c.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker-compose logs -f");
    std::thread::sleep(Duration::from_secs(3));
    c.ok(&["stop", "-t", "1", "worker"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while follow.try_wait().expect("logs -f").is_none() {
        if Instant::now() > deadline {
            let _ = follow.kill();
            let out = follow.wait_with_output().expect("logs output");
            panic!(
                "logs -f did not end after the workers stopped:\n{}",
                stdout(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = follow.wait_with_output().expect("logs output");
    assert_ok(&out, "logs -f");
    let text = stdout(&out);
    for i in [1, 2] {
        let prefix = format!("worker_{i} ");
        let ticks = text
            .lines()
            .filter(|l| l.starts_with(&prefix) && l.ends_with("| tick"))
            .count();
        assert!(ticks >= 2, "worker {i} ticks in logs -f:\n{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&prefix) && l.ends_with("| worker started")),
            "{text}"
        );
    }
    let web_logs = c.ok(&["logs", "--no-color", "--tail=5", "web"]);
    assert!(web_logs.contains("| web ready"), "{web_logs}");
    println!("ok logs follow");

    // Scale down: one worker again, the second removed.
    c.ok(&["up", "-d", "--scale", "worker=1", "worker"]);
    let workers = lines(&c.ok(&["ps", "-q", "worker"]));
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(
        inspect(&d, &name("worker", 1), "{{.State.Status}}"),
        "running"
    );
    let gone = d.docker(&["inspect", &name("worker", 2)]);
    assert!(!gone.status.success(), "worker_2 still exists");
    println!("ok scale");

    // down -v: containers, networks and the named volume gone.
    c.ok(&["down", "-v", "-t", "1"]);
    let left = stdout(&d.docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={PROJECT}"),
    ]));
    assert!(left.trim().is_empty(), "containers left: {left}");
    let nets = stdout(&d.docker(&["network", "ls", "--format", "{{.Name}}"]));
    assert!(!nets.contains(PROJECT), "networks left: {nets}");
    let vols = stdout(&d.docker(&["volume", "ls", "--format", "{{.Name}}"]));
    assert!(!vols.contains(PROJECT), "volumes left: {vols}");
    println!("ok down");
}
