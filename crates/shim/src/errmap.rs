//! Turns libcontainer's error chains into the messages Docker users know.

/// Joins an error and its sources into one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        let s = e.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        src = e.source();
    }
    msg
}

/// Maps a libcontainer create/exec failure to a Docker-like message. The container's init
/// validates the executable after pivot_root and reports, through its channel, text like
/// `executable 'x' not found in $PATH` or `executable 'x' at path '"/x"' does not have
/// correct permissions`; those become `exec: "x": executable file not found in $PATH` and
/// `exec: "x": permission denied`. Anything else is returned unchanged.
pub fn docker_message(chain: &str) -> String {
    if let Some(name) = between(chain, "executable '", "' not found in $PATH") {
        return format!("exec: \"{name}\": executable file not found in $PATH");
    }
    if let Some(name) = between(chain, "executable '", "' at path") {
        if chain.contains("does not have correct permissions") {
            return format!("exec: \"{name}\": permission denied");
        }
    }
    if let Some(name) = between(chain, "failed to check permissions for executable '", "'") {
        return format!("exec: \"{name}\": stat {name}: no such file or directory");
    }
    if chain.contains("PATH environment variable is not set") {
        return "exec: PATH environment variable is not set".into();
    }
    chain.to_owned()
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_not_found() {
        let raw = "failed to create container: failed to run container process: \
                   error in executing process : invalid executable: executable 'nosuchcmd' \
                   not found in $PATH";
        assert_eq!(
            docker_message(raw),
            "exec: \"nosuchcmd\": executable file not found in $PATH"
        );
    }

    #[test]
    fn maps_permission_denied() {
        let raw = "invalid executable: executable '/etc/passwd' at path '\"/etc/passwd\"' does \
                   not have correct permissions";
        assert_eq!(
            docker_message(raw),
            "exec: \"/etc/passwd\": permission denied"
        );
    }

    #[test]
    fn other_errors_pass_through() {
        assert_eq!(docker_message("cgroup busy"), "cgroup busy");
    }

    #[test]
    fn chain_joins_sources() {
        let e = std::io::Error::other("inner");
        assert_eq!(error_chain(&e), "inner");
    }
}
