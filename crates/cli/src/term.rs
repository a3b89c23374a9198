//! The local terminal: raw mode for `-t` sessions and its window size.

use std::io::IsTerminal;

use nix::sys::termios::{self, SetArg, Termios};

/// Restores the terminal's saved settings when dropped.
pub struct RawGuard {
    saved: Termios,
}

/// Puts stdin's terminal in raw mode (as docker does for `-it`), so keys like Ctrl-C reach the
/// container instead of the local shell. `None` when stdin is not a terminal.
pub fn raw_stdin() -> Option<RawGuard> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    let saved = termios::tcgetattr(&stdin).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    // Keep output post-processing so "\n" from the container still returns the carriage, as
    // docker's raw mode leaves OPOST alone.
    raw.output_flags |= termios::OutputFlags::OPOST;
    termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
    Some(RawGuard { saved })
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// The terminal size of stdout (or stdin) as (rows, cols).
pub fn size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` through the valid pointer we pass; the fd is
        // one of the standard descriptors and an error simply leaves `ws` untouched.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Parses docker's `--detach-keys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) into bytes; spaces around
/// the commas are allowed.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let normalized: Vec<&str> = keys.split(',').map(str::trim).collect();
    berth_api_types::detach::parse(&normalized.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-1").is_err());
    }

    #[test]
    fn escape_proxy() {
        let mut p = berth_api_types::detach::Scanner::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(p.feed(&[16]), (vec![], false));
        assert_eq!(p.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(p.feed(&[b'y', 16, 17, b'z']), (vec![b'y'], true));
    }
}
