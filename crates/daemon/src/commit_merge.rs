//! `POST /commit` with a config in the body: dockerd does not replace the container's config
//! with it but fills what the body leaves out from the container's config (moby's `merge` in
//! daemon/commit.go). So `{"Env":["A=1"]}` keeps the container's `PATH`, and its labels,
//! exposed ports, command and working directory stay unless the body names its own.

use berth_api_types::container::Config;

/// The body's config `user` completed from the container's config `container`.
pub(crate) fn merge(user: &Config, container: &Config) -> Config {
    let mut out = user.clone();
    if out.user.is_empty() {
        out.user = container.user.clone();
    }
    match (&mut out.exposed_ports, &container.exposed_ports) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (port, v) in theirs {
                mine.entry(port.clone()).or_insert_with(|| v.clone());
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    match (&mut out.env, &container.env) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
            for e in theirs {
                if !mine.iter().any(|m| key(m) == key(e)) {
                    mine.push(e.clone());
                }
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    let labels = out.labels.get_or_insert_with(Default::default);
    for (k, v) in container.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if out.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if out.cmd.as_ref().is_none_or(Vec::is_empty) {
            out.cmd = container.cmd.clone();
            out.args_escaped = container.args_escaped;
        }
        if out.entrypoint.is_none() {
            out.entrypoint = container.entrypoint.clone();
        }
    }
    if let Some(theirs) = &container.healthcheck {
        match &mut out.healthcheck {
            None => out.healthcheck = Some(theirs.clone()),
            Some(mine) => {
                if mine.test.as_ref().is_none_or(Vec::is_empty) {
                    mine.test = theirs.test.clone();
                }
                for (m, t) in [
                    (&mut mine.interval, theirs.interval),
                    (&mut mine.timeout, theirs.timeout),
                    (&mut mine.start_period, theirs.start_period),
                    (&mut mine.start_interval, theirs.start_interval),
                    (&mut mine.retries, theirs.retries),
                ] {
                    if *m == 0 {
                        *m = t;
                    }
                }
            }
        }
    }
    if out.working_dir.is_empty() {
        out.working_dir = container.working_dir.clone();
    }
    match (&mut out.volumes, &container.volumes) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (k, v) in theirs {
                mine.insert(k.clone(), v.clone());
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    if out.stop_signal.as_deref().unwrap_or_default().is_empty() {
        out.stop_signal = container.stop_signal.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Config {
        Config {
            user: "1000".into(),
            env: Some(vec!["PATH=/bin".into(), "A=old".into()]),
            cmd: Some(vec!["sleep".into(), "300".into()]),
            working_dir: "/srv".into(),
            labels: Some([("team".to_string(), "a".to_string())].into()),
            exposed_ports: Some([("80/tcp".to_string(), serde_json::json!({}))].into()),
            stop_signal: Some("SIGUSR1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn body_values_win_and_the_rest_comes_from_the_container() {
        let user = Config {
            env: Some(vec!["A=new".into(), "B=1".into()]),
            labels: Some([("team".to_string(), "b".to_string())].into()),
            exposed_ports: Some([("443/tcp".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        };
        let m = merge(&user, &container());
        assert_eq!(
            m.env,
            Some(vec!["A=new".into(), "B=1".into(), "PATH=/bin".into()])
        );
        assert_eq!(m.labels.unwrap()["team"], "b");
        let ports: Vec<_> = m.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["443/tcp", "80/tcp"]);
        assert_eq!(m.cmd, Some(vec!["sleep".into(), "300".into()]));
        assert_eq!(m.user, "1000");
        assert_eq!(m.working_dir, "/srv");
        assert_eq!(m.stop_signal.as_deref(), Some("SIGUSR1"));
    }

    #[test]
    fn an_entrypoint_in_the_body_drops_the_container_command() {
        let user = Config {
            entrypoint: Some(vec!["/bin/true".into()]),
            ..Default::default()
        };
        let m = merge(&user, &container());
        assert_eq!(m.cmd, None);
        assert_eq!(m.entrypoint, Some(vec!["/bin/true".into()]));
        let user = Config {
            cmd: Some(vec!["echo".into()]),
            ..Default::default()
        };
        assert_eq!(merge(&user, &container()).cmd, Some(vec!["echo".into()]));
    }
}
