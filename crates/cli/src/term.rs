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

/// Parses docker's `--detach-keys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) into bytes.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{c}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Watches input for the detach sequence, holding back bytes that might start it.
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, matched: 0 }
    }

    /// Feeds input; returns the bytes to forward and whether the sequence was completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
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
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(p.feed(&[16]), (vec![], false));
        assert_eq!(p.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(p.feed(&[b'y', 16, 17, b'z']), (vec![b'y'], true));
    }
}
