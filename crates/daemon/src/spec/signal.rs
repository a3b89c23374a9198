//! Signal names as Docker accepts them (moby/sys/signal `ParseSignal` and its Linux `SignalMap`).

use super::SpecError;

const NAMED: [(&str, i32); 35] = [
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("UNUSED", 31),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// Docker's `RTMIN` is 34, the first real-time signal glibc leaves to applications.
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// Parses a signal the way `docker kill -s` / `--stop-signal` do: a positive number, or a name
/// with or without `SIG`, any case, including `RTMIN`, `RTMIN+n` (n ≤ 15), `RTMAX-n` (n ≤ 14), `RTMAX`.
pub fn parse_signal(raw: &str) -> Result<i32, SpecError> {
    let invalid = || SpecError::InvalidSignal(raw.to_string());
    if let Ok(n) = raw.parse::<i64>() {
        return i32::try_from(n)
            .ok()
            .filter(|n| (1..=RTMAX).contains(n))
            .ok_or_else(invalid);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMED.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let offset = |s: &str, max: i32| -> Option<i32> {
        let n: i32 = s.parse().ok()?;
        (1..=max).contains(&n).then_some(n)
    };
    match name {
        "RTMIN" => Ok(RTMIN),
        "RTMAX" => Ok(RTMAX),
        _ => {
            if let Some(n) = name.strip_prefix("RTMIN+").and_then(|s| offset(s, 15)) {
                Ok(RTMIN + n)
            } else if let Some(n) = name.strip_prefix("RTMAX-").and_then(|s| offset(s, 14)) {
                Ok(RTMAX - n)
            } else {
                Err(invalid())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert_eq!(parse_signal("SIGRTMIN").unwrap(), 34);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse_signal("RTMAX-1").unwrap(), 63);
        assert_eq!(parse_signal("SIGRTMAX").unwrap(), 64);
        assert_eq!(parse_signal("SIGWINCH").unwrap(), 28);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "0", "-1", "65", "SIGFOO", "", "RTMIN+16", "RTMAX-15", "RTMIN+x",
        ] {
            let err = parse_signal(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("Invalid signal: {bad}"));
        }
    }
}
