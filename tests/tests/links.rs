//! Legacy links (`--link name:alias`): Docker's environment variables on the default bridge,
//! and on a user-defined network a DNS alias only the linking container resolves.

use berth_tests::*;

#[test]
fn links_set_docker_env_vars_on_the_default_bridge() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["my-db", "parent"], vec![]);
    run_sleeper(
        &d,
        "my-db",
        &[
            "-e",
            "PASSWORD=gordon",
            "--expose",
            "6379",
            "--expose",
            "53/udp",
        ],
    );
    let ip = inspect(&d, "my-db", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    run_sleeper(
        &d,
        "parent",
        &["--link", "my-db:db-1", "-e", "DB_1_ENV_PASSWORD=mine"],
    );
    let out = d.docker(&["exec", "parent", "env"]);
    assert_ok(&out, "env");
    let env: Vec<String> = stdout(&out).lines().map(String::from).collect();
    for want in [
        format!("DB_1_PORT=tcp://{ip}:6379"),
        format!("DB_1_PORT_6379_TCP=tcp://{ip}:6379"),
        format!("DB_1_PORT_6379_TCP_ADDR={ip}"),
        "DB_1_PORT_6379_TCP_PORT=6379".to_string(),
        "DB_1_PORT_6379_TCP_PROTO=tcp".to_string(),
        format!("DB_1_PORT_53_UDP=udp://{ip}:53"),
        "DB_1_PORT_53_UDP_PROTO=udp".to_string(),
        "DB_1_NAME=/parent/db-1".to_string(),
        // The container's own Env wins over a link variable of the same name.
        "DB_1_ENV_PASSWORD=mine".to_string(),
    ] {
        assert!(env.contains(&want), "{want} missing in {env:?}");
    }
    assert!(
        !env.iter().any(|e| e.starts_with("DB_1_ENV_PATH=")),
        "PATH is not passed on: {env:?}"
    );
    // The link variables are the process environment, not the container's config.
    let cfg = inspect(&d, "parent", "{{json .Config.Env}}");
    assert!(!cfg.contains("DB_1_PORT"), "{cfg}");
    // A one-shot container sees them too, with the child's env.
    let out = d.docker(&["run", "--rm", "--link", "my-db", "busybox", "env"]);
    assert_ok(&out, "run --link my-db");
    let env = stdout(&out);
    assert!(env.contains("MY_DB_ENV_PASSWORD=gordon"), "{env}");
    assert!(
        env.contains(&format!("MY_DB_PORT=tcp://{ip}:6379")),
        "{env}"
    );
}

#[test]
fn links_on_a_user_network_are_private_dns_aliases() {
    if !is_root() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let _c = Cleanup(&d, vec!["srv", "cli", "other"], vec!["lnet"]);
    assert_ok(
        &d.docker(&["network", "create", "--subnet", &d.spare_subnet(0), "lnet"]),
        "network create",
    );
    run_sleeper(
        &d,
        "srv",
        &["--network", "lnet", "-e", "SECRET=x", "--expose", "80"],
    );
    let srv_ip = inspect(
        &d,
        "srv",
        "{{(index .NetworkSettings.Networks \"lnet\").IPAddress}}",
    );
    for (name, link) in [("cli", Some("srv:dbalias")), ("other", None)] {
        let mut args = vec!["run", "-d", "--name", name, "--network", "lnet"];
        if let Some(l) = link {
            args.extend(["--link", l]);
        }
        args.extend(["busybox", "sleep", "300"]);
        assert_ok(&d.docker(&args), "run");
    }
    let out = d.docker(&["exec", "cli", "nslookup", "dbalias"]);
    assert!(stdout(&out).contains(&srv_ip), "{}", stdout(&out));
    assert_ok(
        &d.docker(&["exec", "cli", "ping", "-c1", "-W2", "dbalias"]),
        "ping the link alias",
    );
    // Only the linking container knows the alias.
    let out = d.docker(&["exec", "other", "nslookup", "dbalias"]);
    assert!(!stdout(&out).contains(&srv_ip), "{}", stdout(&out));
    assert!(
        !out.status.success()
            || stdout(&out).contains("NXDOMAIN")
            || stderr(&out).contains("NXDOMAIN")
    );
    // No link variables off the default bridge (as with Docker).
    let out = d.docker(&["exec", "cli", "env"]);
    assert!(!stdout(&out).contains("DBALIAS_"), "{}", stdout(&out));
}
