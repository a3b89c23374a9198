//! Output formatting as the docker CLI does it: human durations and sizes (go-units), truncated
//! ids, Go's `text/tabwriter` alignment, and `--format` handling (`table`, `json`, templates).

use serde_json::Value;

use crate::template::{unescape_format, Template, TemplateError};

pub use berth_go::{bytes_size, human_duration, human_size_prec};

/// Seconds since `unix` (negative clock skew counts as zero).
pub fn since(unix: i64) -> i64 {
    chrono::Utc::now().timestamp() - unix
}

/// "3 seconds ago", as `docker ps`'s CREATED and `docker images`'s CREATED.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(since(unix)))
}

/// Sizes as `docker images` and `docker ps -s` show them (`4.26MB`).
pub fn human_size(size: i64) -> String {
    human_size_prec(size as f64, 3)
}

/// The short id: without a `sha256:` prefix, 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Shortens to `max` characters with a trailing `…`, as docker's `Ellipsis`.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

pub use berth_go::quote as go_quote;

/// Go's `time.Time.String()` for a unix time in the local zone: `2024-05-01 10:00:00 +0000 UTC`.
pub fn go_time(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let off = t.format("%z").to_string();
            let zone = if off == "+0000" {
                "UTC".to_string()
            } else {
                off.clone()
            };
            format!("{} {off} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => unix.to_string(),
    }
}

/// Go's `text/tabwriter` as docker configures it (minwidth 10, tabwidth 1, padding 3, spaces):
/// tab-terminated cells are padded to their column's width; the last cell of a line is not.
pub fn tabwrite(text: &str) -> String {
    tabwrite_min(text, 10)
}

/// [`tabwrite`] with another minimum cell width.
pub fn tabwrite_min(text: &str, minwidth: usize) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let ncols = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for line in &lines {
        for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(minwidth);
        }
    }
    let mut out = String::new();
    for line in &lines {
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < line.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Re-indents raw JSON the way Go's `json.Indent(..., "", "    ")` does, keeping key order and
/// string contents byte for byte.
pub fn indent_json(raw: &[u8], indent: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    let s = String::from_utf8_lossy(raw);
    let b = s.as_bytes();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push_str(&s[start..(i + 1).min(b.len())]);
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < b.len() && b[j] == close {
                    out.push(c as char);
                    out.push(close as char);
                    i = j;
                } else {
                    out.push(c as char);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c as char);
            }
            b',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            b':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            _ => {
                // Numbers, true/false/null: copy up to the next structural character.
                let start = i;
                while i + 1 < b.len() && !b"{}[],:\" \t\r\n".contains(&b[i + 1]) {
                    i += 1;
                }
                out.push_str(&s[start..=i]);
            }
        }
        i += 1;
    }
    out
}

/// An inspect command's `--format`: `None` (also for `json` and an empty value) prints the
/// objects as an indented JSON array.
pub fn inspect_template(format: Option<&str>) -> Result<Option<Template>, TemplateError> {
    match format.map(str::trim) {
        None | Some("") | Some("json") => Ok(None),
        Some(f) => Template::parse(&unescape_format(f))
            .map(Some)
            .map_err(|e| TemplateError(format!("template parsing error: {}", e.0))),
    }
}

/// Prints what an inspect command found (each object's raw JSON as the daemon sent it): a JSON
/// array indented as Go's `json.Indent` does, or the template rendered once per object.
pub fn print_inspected<B: AsRef<[u8]>>(
    found: &[B],
    template: Option<&Template>,
) -> Result<(), TemplateError> {
    match template {
        None => {
            let mut raw = b"[".to_vec();
            for (i, b) in found.iter().enumerate() {
                if i > 0 {
                    raw.push(b',');
                }
                raw.extend_from_slice(b.as_ref());
            }
            raw.push(b']');
            println!("{}", indent_json(&raw, "    "));
        }
        Some(t) => {
            for b in found {
                let v: Value =
                    serde_json::from_slice(b.as_ref()).map_err(|e| TemplateError(e.to_string()))?;
                println!("{}", t.render(&v)?);
            }
        }
    }
    Ok(())
}

/// A parsed `--format` value for list commands.
pub enum ListFormat {
    /// `table [template]`: header row plus rows, aligned.
    Table(Template),
    /// A plain template (or `json`), one rendering per row, no header.
    Raw(Template),
}

impl ListFormat {
    /// `format` is the user's value (None/empty for the default table); `default_table` is the
    /// command's default table template without the `table` keyword.
    pub fn parse(format: Option<&str>, default_table: &str) -> Result<ListFormat, TemplateError> {
        let f = format.unwrap_or("").trim();
        if f.is_empty() || f == "table" {
            return Ok(ListFormat::Table(Template::parse(&unescape_format(
                default_table,
            ))?));
        }
        if f == "json" {
            return Ok(ListFormat::Raw(Template::parse("{{json .}}")?));
        }
        if let Some(rest) = f.strip_prefix("table") {
            if rest.starts_with(char::is_whitespace) {
                return Ok(ListFormat::Table(Template::parse(&unescape_format(
                    rest.trim(),
                ))?));
            }
        }
        Ok(ListFormat::Raw(Template::parse(&unescape_format(f))?))
    }

    /// Renders rows. `headers` maps row field names to header strings (`ID` → `CONTAINER ID`).
    pub fn render(&self, headers: &Value, rows: &[Value]) -> Result<String, TemplateError> {
        match self {
            ListFormat::Table(t) => {
                let mut text = String::new();
                // Headers render through the same template against a row of header names; a
                // header template failing (functions on header text) falls back to empty.
                let h = t.render(headers).unwrap_or_default();
                text.push_str(&h);
                text.push('\n');
                for row in rows {
                    text.push_str(&t.render(row)?);
                    text.push('\n');
                }
                Ok(tabwrite(&text))
            }
            ListFormat::Raw(t) => {
                let mut text = String::new();
                for row in rows {
                    text.push_str(&t.render(row)?);
                    text.push('\n');
                }
                Ok(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let raw = br#"{"Id":"a","Args":[],"Config":{"Labels":{},"Env":["A=1","B=\"x,y\""]},"N":1.5,"T":true,"Z":null}"#;
        let want = r#"{
    "Id": "a",
    "Args": [],
    "Config": {
        "Labels": {},
        "Env": [
            "A=1",
            "B=\"x,y\""
        ]
    },
    "N": 1.5,
    "T": true,
    "Z": null
}"#;
        assert_eq!(indent_json(raw, "    "), want);
    }
    use serde_json::json;

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(59 * 60 + 59), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5399), "About an hour");
        assert_eq!(human_duration(5400), "2 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
        assert_eq!(human_duration(14 * 24 * 3600), "2 weeks");
        assert_eq!(human_duration(60 * 24 * 3600), "2 months");
        assert_eq!(human_duration(2 * 365 * 24 * 3600), "2 years");
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(123), "123B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(4_264_960), "4.26MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(12_500_000), "12.5MB");
        assert_eq!(human_size(100_000_000), "100MB");
        assert_eq!(human_size(1_800_000_000), "1.8GB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size_prec(7_800_000.0, 4), "7.8MB");
        assert_eq!(bytes_size(2048.0 * 1024.0 * 1024.0), "2GiB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
    }

    #[test]
    fn ids_and_quotes() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(
            ellipsis("sh -c 'sleep 1000 && echo done'", 20),
            "sh -c 'sleep 1000 &…"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(go_quote("echo \"hi\""), "\"echo \\\"hi\\\"\"");
    }

    #[test]
    fn tabwriter_pads_like_go() {
        let out = tabwrite("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tx\n");
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   x\n"
        );
        // minwidth 10
        assert_eq!(tabwrite("A\tB\n"), "A         B\n");
    }

    #[test]
    fn list_formats() {
        let headers = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let rows = vec![
            json!({"ID": "abc", "Names": "n1"}),
            json!({"ID": "def", "Names": "n2"}),
        ];
        let f = ListFormat::parse(None, "{{.ID}}\\t{{.Names}}").unwrap();
        assert_eq!(
            f.render(&headers, &rows).unwrap(),
            "CONTAINER ID   NAMES\nabc            n1\ndef            n2\n"
        );
        let f = ListFormat::parse(Some("{{.Names}}"), "").unwrap();
        assert_eq!(f.render(&headers, &rows).unwrap(), "n1\nn2\n");
        let f = ListFormat::parse(Some("json"), "").unwrap();
        assert_eq!(
            f.render(&headers, &rows[..1]).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"n1\"}\n"
        );
        let f = ListFormat::parse(Some("table {{.Names}}\\t{{.ID}}"), "").unwrap();
        assert_eq!(
            f.render(&headers, &rows[..1]).unwrap(),
            "NAMES     CONTAINER ID\nn1        abc\n"
        );
        let f = ListFormat::parse(Some("{{.ID}}: {{.Names}}"), "").unwrap();
        assert_eq!(f.render(&headers, &rows[..1]).unwrap(), "abc: n1\n");
    }
}
