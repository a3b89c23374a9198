//! Go's `fmt` verbs as dockerd's legacy builder prints values into an image's history
//! (`CMD %q`, `VOLUME %v`, `HEALTHCHECK %q` of a struct): clients and tests compare the text.

use berth_go::{format_duration as duration, quote};
use berth_image::config::HealthConfig;

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
        Some('"') => "'\"'".into(),
        Some(c) => {
            // The string quoting of one character, its `"` delimiters swapped for `'`.
            let q = quote(&c.to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
        None => format!("%!q(int={n})"),
    }
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
