//! Docker's detach keys: the `detachKeys` parameter syntax and a scanner that finds the sequence
//! in an input stream. Shared by the daemon (which detaches attach/exec clients) and the CLI.

/// The sequence Docker uses when none is given.
pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// Parses `ctrl-p,ctrl-q`, `a`, `ctrl-@`… into bytes. The error names the part not understood.
pub fn parse(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        if let Some(c) = part.strip_prefix("ctrl-") {
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
        } else if part.len() == 1 {
            out.push(part.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{part}'"));
        }
    }
    Ok(out)
}

/// Finds the detach sequence in a byte stream that may split it across reads, holding back
/// bytes that might start it.
#[derive(Debug)]
pub struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    pub fn new(keys: Vec<u8>) -> Self {
        Scanner { keys, matched: 0 }
    }

    /// The bytes to forward, and whether the full sequence was seen.
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
                continue;
            }
            // A partial match that broke off was ordinary input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(parse(DEFAULT).unwrap(), vec![16, 17]);
        assert_eq!(parse("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse("ctrl-").is_err());
        assert!(parse("ctrl-1").is_err());
        assert!(parse("xy").is_err());
    }

    #[test]
    fn scans_across_reads() {
        let mut sc = Scanner::new(vec![16, 17]);
        assert_eq!(sc.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(sc.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(sc.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(sc.feed(b"\x11rest"), (Vec::new(), true));
        let mut sc = Scanner::new(vec![16, 17]);
        assert_eq!(sc.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut sc = Scanner::new(vec![b'q']);
        assert_eq!(sc.feed(b"aq"), (b"a".to_vec(), true));
    }
}
