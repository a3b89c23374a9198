//! Ansible's community.docker collection (PyPI `ansible` 12.3.0, its own vendored Engine API
//! client), unchanged, against berthd: tests/ansible/playbook.yml with connection local and
//! DOCKER_HOST set. The playbook asserts as it goes: network and volume lifecycle, a container
//! with a network alias and a fixed IP, a published port, a volume and a healthcheck (waited
//! for), idempotence (identical runs report no change: berth's inspect answers what the module
//! asked for), an in-place update of limits, exec, copy_into, image build/export/load, prune.
//! Skipped with a message when the client environment is missing (scripts/install-deps.sh
//! installs it into /opt/berth-clients).

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::*;

/// The virtual environment scripts/install-deps.sh installs ansible and testcontainers into.
fn clients_venv() -> PathBuf {
    std::env::var_os("BERTH_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/berth-clients"))
}

#[test]
fn ansible_community_docker_playbook() {
    if !is_root() {
        return;
    }
    let venv = clients_venv();
    let playbook_bin = venv.join("bin/ansible-playbook");
    if !playbook_bin.exists() {
        eprintln!(
            "skipping: {} missing (scripts/install-deps.sh installs ansible)",
            playbook_bin.display()
        );
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let work = d.root.join("ansible");
    std::fs::create_dir_all(work.join("tmp")).expect("work dir");
    let subnet = d.spare_subnet(0);
    let base = subnet.split('/').next().expect("subnet");
    let (prefix, last) = base.rsplit_once('.').expect("an IPv4 subnet");
    let fixed_ip = format!("{prefix}.{}", last.parse::<u8>().expect("octet") + 10);
    let vars = serde_json::json!({
        "web_port": free_port(),
        "subnet": subnet,
        "fixed_ip": fixed_ip,
        "work_dir": work.to_str().expect("utf8 path"),
        "ansible_python_interpreter": venv.join("bin/python3").to_str().expect("utf8 path"),
    })
    .to_string();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible");
    // A configuration of its own: none the machine or the user has applies.
    let cfg = work.join("ansible.cfg");
    std::fs::write(
        &cfg,
        "[defaults]\nretry_files_enabled = False\nnocolor = True\ninterpreter_python = auto_silent\n",
    )
    .expect("ansible.cfg");
    let home = work.join("home");
    let tmp = work.join("tmp");
    let out = d.run_env_for(
        &playbook_bin,
        &[
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            &vars,
            dir.join("playbook.yml").to_str().expect("utf8 path"),
        ],
        &[
            ("ANSIBLE_HOME", home.to_str().expect("utf8 path")),
            ("ANSIBLE_LOCAL_TEMP", tmp.to_str().expect("utf8 path")),
            ("ANSIBLE_NOCOLOR", "1"),
            ("ANSIBLE_RETRY_FILES_ENABLED", "0"),
            ("ANSIBLE_CONFIG", cfg.to_str().expect("utf8 path")),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C.UTF-8"),
        ],
        None,
        Duration::from_secs(300),
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "ansible-playbook failed\nstdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    let recap = text
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("failed="))
        .unwrap_or_else(|| panic!("no play recap:\n{text}"));
    assert!(
        recap.contains("failed=0") && recap.contains("unreachable=0"),
        "{recap}"
    );
    // Nothing of the play is left behind (its last tasks remove and prune everything).
    let left = stdout(&d.docker(&["ps", "-aq", "--filter", "name=bta_"]));
    assert!(left.trim().is_empty(), "containers left: {left}");
}
