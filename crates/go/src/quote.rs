//! `strconv.Quote`.

/// Go's `strconv.Quote`: `"…"` with `\"`, `\\`, `\a \b \f \n \r \t \v`, `\xNN` for the other
/// ASCII control bytes and DEL; printable characters as they are.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go() {
        assert_eq!(quote("a b"), r#""a b""#);
        assert_eq!(quote("say \"hi\"\n"), r#""say \"hi\"\n""#);
        assert_eq!(quote("c:\\x\t\x01\x7f"), r#""c:\\x\t\x01\x7f""#);
        assert_eq!(quote("\x07\x08\x0b\x0c\r"), r#""\a\b\v\f\r""#);
        assert_eq!(quote("µs é"), "\"µs é\"");
        assert_eq!(quote(""), "\"\"");
    }
}
