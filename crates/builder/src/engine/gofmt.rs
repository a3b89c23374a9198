//! Go's `fmt` verbs as dockerd's legacy builder prints values into an image's history
//! (`CMD %q`, `VOLUME %v`, `HEALTHCHECK %q` of a struct): clients and tests compare the text.

use berth_image::config::HealthConfig;

/// Go's `strconv.Quote`: `"…"` with `\"`, `\\`, `\n`… and `\xNN` for other control bytes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push(c),
    }
}

/// `%q` of a `[]string`: `["a" "b c"]`.
pub(crate) fn quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// `%v` of a `[]string`: `[a b c]`.
pub(crate) fn list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// `%q` of an integer: Go quotes it as a rune literal (`'\x00'`, `'\a'`, `'A'`).
fn quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) => {
            let mut s = String::from("'");
            push_escaped(&mut s, c);
            s.push('\'');
            s
        }
        None => format!("%!q(int={n})"),
    }
}

/// Go's `time.Duration.String()`: `0s`, `1.5ms`, `5s`, `1m30s`, `1h0m0s`.
pub(crate) fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |rem: u64, digits: u32| -> String {
        let s = format!("{rem:0width$}", width = digits as usize);
        let s = s.trim_end_matches('0');
        if s.is_empty() {
            String::new()
        } else {
            format!(".{s}")
        }
    };
    if u < 1_000_000_000 {
        let (unit, div, digits) = if u < 1_000 {
            ("ns", 1, 0)
        } else if u < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        let f = if digits == 0 {
            String::new()
        } else {
            frac(u % div, digits)
        };
        return format!("{sign}{}{f}{unit}", u / div);
    }
    let secs = u / 1_000_000_000;
    let f = frac(u % 1_000_000_000, 9);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let head = if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        String::new()
    };
    format!("{sign}{head}{s}{f}s")
}

/// `HEALTHCHECK %q` of moby's `*container.HealthConfig`: `&{["CMD-SHELL" "true"] "5s" "0s"
/// "0s" "0s" '\x00'}` (Test, Interval, Timeout, StartPeriod, StartInterval, Retries).
pub(crate) fn healthcheck(h: &HealthConfig) -> String {
    let d = |v: Option<i64>| quote(&duration(v.unwrap_or(0)));
    format!(
        "&{{{} {} {} {} {} {}}}",
        quote_list(h.test.as_deref().unwrap_or(&[])),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        d(h.start_interval),
        quote_rune(h.retries.unwrap_or(0))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_them() {
        for (ns, s) in [
            (0, "0s"),
            (5_000_000_000, "5s"),
            (1_500_000, "1.5ms"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_250_000_000, "1.25s"),
            (999, "999ns"),
            (2_000, "2µs"),
        ] {
            assert_eq!(duration(ns), s, "{ns}");
        }
    }

    #[test]
    fn quoting_as_go_does() {
        let v = vec!["cat".to_string(), "/a \"b\"\n".to_string()];
        assert_eq!(quote_list(&v), r#"["cat" "/a \"b\"\n"]"#);
        assert_eq!(list(&v[..1]), "[cat]");
        assert_eq!(quote_rune(0), r"'\x00'");
        assert_eq!(quote_rune(3), r"'\x03'");
        assert_eq!(quote_rune(10), r"'\n'");
        assert_eq!(quote_rune(65), "'A'");
    }

    #[test]
    fn a_healthcheck_as_dockerd_writes_it() {
        let h = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            interval: Some(5_000_000_000),
            ..Default::default()
        };
        assert_eq!(
            healthcheck(&h),
            r#"&{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\x00'}"#
        );
    }
}
