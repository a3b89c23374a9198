//! Exec through the fake shim's exec, logs from the json-file the fake shim writes, and the
//! event log of a container's life.

use std::sync::Arc;

use berth_api_types::exec::{CreateRequest, StartRequest};
use berth_api_types::ErrorKind;
use berth_services::{ExecStarted, LogsOptions};
use tokio::io::AsyncReadExt;

use crate::host::fake_shim::Behaviour;
use crate::host::testkit::{demux, TestDaemon};
use crate::model::Status;

fn exec_req(cmd: &[&str]) -> CreateRequest {
    CreateRequest {
        attach_stdout: true,
        attach_stderr: true,
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..CreateRequest::default()
    }
}

/// Runs an attached exec to its end: the demultiplexed frames the client gets.
async fn run_exec(d: &Arc<crate::Daemon>, exec_id: &str) -> Vec<(u8, String)> {
    let started = d
        .exec_start(exec_id, StartRequest::default())
        .await
        .expect("exec start");
    let ExecStarted::Attached(session) = started else {
        panic!("an attached exec");
    };
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let run = tokio::spawn((session.run)(Box::new(ours)));
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        theirs.read_to_end(&mut out),
    )
    .await
    .expect("the exec stream ends")
    .expect("read");
    run.await.expect("session");
    demux(&out)
}

fn with_exec(output: &[u8], exit: i32) -> Behaviour {
    Behaviour {
        exec_output: output.to_vec(),
        exec_exit: exit,
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn exec_streams_the_output_and_records_the_exit_code() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(with_exec(b"hi there\n", 3));
    let id = t.run("ctr", |_| {}).await;
    let exec =
        t.d.exec_create(&id, exec_req(&["echo", "hi"]))
            .await
            .unwrap();
    let before = t.d.exec_inspect(&exec).unwrap();
    assert!(!before.running);
    assert_eq!(before.exit_code, None);
    assert_eq!(before.process_config.entrypoint, "echo");
    let frames = run_exec(&t.d, &exec).await;
    assert_eq!(frames, [(1, "hi there\n".to_string())]);
    let after = t.d.exec_inspect(&exec).unwrap();
    assert!(!after.running);
    assert_eq!(after.exit_code, Some(3));
    let reqs = t.fake.shim(&id).unwrap().requests();
    assert!(reqs.contains(&format!("exec {exec}")), "{reqs:?}");
}

#[tokio::test]
async fn an_exec_runs_once() {
    let t = TestDaemon::new().await;
    let id = t.run("ctr", |_| {}).await;
    let exec = t.d.exec_create(&id, exec_req(&["true"])).await.unwrap();
    run_exec(&t.d, &exec).await;
    let e =
        t.d.exec_start(&exec, StartRequest::default())
            .await
            .err()
            .expect("second start refused");
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        e.message,
        format!("Error: Exec command {exec} has already run")
    );
}

#[tokio::test]
async fn a_detached_exec_still_records_its_exit() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(with_exec(b"", 7));
    let id = t.run("ctr", |_| {}).await;
    let exec =
        t.d.exec_create(&id, exec_req(&["sleep", "1"]))
            .await
            .unwrap();
    let started =
        t.d.exec_start(
            &exec,
            StartRequest {
                detach: true,
                ..StartRequest::default()
            },
        )
        .await
        .expect("start");
    assert!(matches!(started, ExecStarted::Detached));
    for _ in 0..200 {
        if t.d.exec_inspect(&exec).unwrap().exit_code.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(t.d.exec_inspect(&exec).unwrap().exit_code, Some(7));
}

#[tokio::test]
async fn exec_needs_a_running_container_and_a_command() {
    let t = TestDaemon::new().await;
    let id = t.create("idle", |_| {}).await;
    let e = t.d.exec_create(&id, exec_req(&["ls"])).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(e.message, format!("Container {id} is not running"));
    t.d.container_start(&id).await.unwrap();
    let e = t.d.exec_create(&id, exec_req(&[])).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert_eq!(e.message, "No exec command specified");
    t.d.container_pause(&id, true).await.unwrap();
    let e =
        t.d.exec_create("idle", exec_req(&["ls"]))
            .await
            .unwrap_err();
    assert_eq!(
        e.message,
        "Container idle is paused, unpause the container before exec"
    );
    let e = t.d.exec_inspect("nope").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "No such exec instance: nope");
}

#[tokio::test]
async fn exec_events_carry_the_command_and_exit_code() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(with_exec(b"", 2));
    let id = t.run("ctr", |_| {}).await;
    let exec = t.d.exec_create(&id, exec_req(&["ls", "-l"])).await.unwrap();
    run_exec(&t.d, &exec).await;
    let actions = t.actions_of(&id).await;
    assert!(
        actions.contains(&"container exec_create: ls -l".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"container exec_start: ls -l".to_string()),
        "{actions:?}"
    );
    let events = t.events().await;
    let die = events
        .iter()
        .find(|m| m["Action"] == "exec_die")
        .expect("exec_die event");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "2");
    assert_eq!(die["Actor"]["Attributes"]["execID"], exec.as_str());
}

#[tokio::test]
async fn logs_show_what_the_process_wrote() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        output: vec!["one".into(), "two".into(), "three".into()],
        ..Behaviour::default()
    });
    let id = t.run("talker", |_| {}).await;
    let all = t
        .logs(
            &id,
            LogsOptions {
                stdout: true,
                stderr: true,
                ..LogsOptions::default()
            },
        )
        .await;
    let text: String = all.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(text, "one\ntwo\nthree\n");
    assert!(all.iter().all(|(s, _)| *s == 1), "all on stdout: {all:?}");
}

#[tokio::test]
async fn logs_tail_and_stream_selection() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        output: vec!["a".into(), "b".into(), "c".into()],
        ..Behaviour::default()
    });
    let id = t.run("talker", |_| {}).await;
    let tail = t
        .logs(
            &id,
            LogsOptions {
                stdout: true,
                tail: Some(1),
                ..LogsOptions::default()
            },
        )
        .await;
    assert_eq!(tail, [(1, "c\n".to_string())]);
    let stderr_only = t
        .logs(
            &id,
            LogsOptions {
                stderr: true,
                ..LogsOptions::default()
            },
        )
        .await;
    assert!(stderr_only.is_empty(), "{stderr_only:?}");
}

#[tokio::test]
async fn logs_with_timestamps_prefix_each_line() {
    let t = TestDaemon::new().await;
    t.fake.set_behaviour(Behaviour {
        output: vec!["stamped".into()],
        ..Behaviour::default()
    });
    let id = t.run("talker", |_| {}).await;
    let lines = t
        .logs(
            &id,
            LogsOptions {
                stdout: true,
                timestamps: true,
                ..LogsOptions::default()
            },
        )
        .await;
    assert_eq!(lines.len(), 1);
    let (ts, rest) = lines[0].1.split_once(' ').expect("a timestamp first");
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(rest, "stamped\n");
}

#[tokio::test]
async fn logs_of_a_missing_container() {
    let t = TestDaemon::new().await;
    let e =
        t.d.container_logs("ghost", LogsOptions::default())
            .err()
            .expect("no such container");
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, "No such container: ghost");
}

#[tokio::test]
async fn logs_are_refused_for_the_none_driver() {
    let t = TestDaemon::new().await;
    let id = t
        .create("quiet", |hc| {
            hc.log_config = berth_api_types::container::LogConfig {
                kind: "none".into(),
                config: Default::default(),
            }
        })
        .await;
    let e =
        t.d.container_logs(
            &id,
            LogsOptions {
                stdout: true,
                ..LogsOptions::default()
            },
        )
        .err()
        .expect("refused");
    assert!(
        e.message
            .contains("configured logging driver does not support reading"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_run_emits_create_start_die_in_order() {
    let t = TestDaemon::new().await;
    let id = t.run("life", |_| {}).await;
    t.fake.shim(&id).unwrap().exit(5);
    t.wait_status(&id, Status::Exited).await;
    t.d.container_remove(&id, false, false).await.unwrap();
    let actions = t.actions_of(&id).await;
    assert_eq!(
        actions,
        [
            "container create",
            "container start",
            "container die",
            "container destroy"
        ]
    );
    let events = t.events().await;
    let die = events
        .iter()
        .find(|m| m["Actor"]["ID"] == id.as_str() && m["Action"] == "die")
        .unwrap();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "5");
    assert_eq!(die["Actor"]["Attributes"]["name"], "life");
    assert_eq!(
        die["Actor"]["Attributes"]["image"],
        crate::host::testkit::IMAGE
    );
    assert_eq!(die["scope"], "local");
}

#[tokio::test]
async fn events_filter_by_type() {
    let t = TestDaemon::new().await;
    t.d.volume_create(berth_api_types::volume::CreateRequest {
        name: "vv".into(),
        ..Default::default()
    })
    .unwrap();
    t.create("ctr", |_| {}).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut stream =
        t.d.events(berth_services::EventsOptions {
            since: Some(0.0),
            until: Some(now + 0.001),
            filters: vec![("type".into(), vec!["volume".into()])],
            ..Default::default()
        })
        .unwrap();
    let mut text = Vec::new();
    use futures_util::StreamExt;
    while let Some(c) = stream.next().await {
        text.extend_from_slice(&c.unwrap());
    }
    let got: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&text)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(!got.is_empty());
    assert!(got.iter().all(|m| m["Type"] == "volume"), "{got:?}");
}

#[tokio::test]
async fn a_failed_start_emits_no_start_event() {
    let t = TestDaemon::new().await;
    let id = t.create("broken", |_| {}).await;
    t.fake.fail_at("launch_shim", 1);
    t.d.container_start(&id).await.unwrap_err();
    let actions = t.actions_of(&id).await;
    assert!(
        !actions.contains(&"container start".to_string()),
        "{actions:?}"
    );
    assert_eq!(
        actions.first().map(String::as_str),
        Some("container create")
    );
}
