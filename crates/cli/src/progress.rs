//! Displays the newline-delimited JSON messages of load, import and pull like docker's
//! `jsonmessage.DisplayJSONMessagesStream`: progress bars on a terminal (indicatif), plain status
//! lines otherwise, `stream` text as is, and `error` messages as the command's failure.

use std::collections::HashMap;
use std::io::Write;

use berth_client::JsonStream;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::util::CliError;

/// What the stream carried besides display text.
#[derive(Debug, Default)]
pub struct StreamResult {
    /// `aux` payloads (e.g. `{"ID": "sha256:..."}`).
    pub aux: Vec<Value>,
}

fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// Reads the whole stream, writing to `out` (stdout or stderr) and drawing bars when `terminal`.
pub async fn display(
    stream: &mut JsonStream,
    terminal: bool,
    to_stderr: bool,
) -> Result<StreamResult, CliError> {
    let mut result = StreamResult::default();
    let multi = MultiProgress::with_draw_target(if !terminal {
        ProgressDrawTarget::hidden()
    } else if to_stderr {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::stdout()
    });
    let style = ProgressStyle::with_template("{prefix}: {msg} [{bar:50}] {bytes}/{total_bytes}")
        .expect("static progress template is valid")
        .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let emit = |multi: &MultiProgress, line: &str| {
        if terminal {
            let _ = multi.println(line.trim_end_matches('\n'));
        } else if to_stderr {
            let mut e = std::io::stderr();
            let _ = e.write_all(line.as_bytes());
        } else {
            let mut o = std::io::stdout();
            let _ = o.write_all(line.as_bytes());
            let _ = o.flush();
        }
    };
    while let Some(msg) = stream.next().await {
        let msg = msg.map_err(CliError::from)?;
        if let Some(e) = msg
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
            .or_else(|| text(&msg["error"]))
        {
            for b in bars.values() {
                b.abandon();
            }
            return Err(CliError::new(1, e.to_string()));
        }
        if let Some(aux) = msg.get("aux") {
            result.aux.push(aux.clone());
            continue;
        }
        let id = text(&msg["id"]).map(str::to_string);
        let status = msg["status"].as_str().unwrap_or("");
        let detail = &msg["progressDetail"];
        let total = detail["total"].as_u64().unwrap_or(0);
        let current = detail["current"].as_u64().unwrap_or(0);
        let has_progress = total > 0 || current > 0;
        if let Some(s) = msg["stream"].as_str() {
            emit(&multi, s);
            continue;
        }
        match id {
            Some(id) if has_progress => {
                if !terminal {
                    // Docker disables progress output when not on a terminal.
                    continue;
                }
                let bar = bars.entry(id.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(total));
                    b.set_style(style.clone());
                    b.set_prefix(id.clone());
                    b
                });
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(current);
                bar.set_message(status.to_string());
            }
            Some(id) => {
                if let Some(bar) = bars.remove(&id) {
                    bar.finish_and_clear();
                }
                let line = match text(&msg["progress"]) {
                    Some(p) => format!("{id}: {status} {p}\n"),
                    None => format!("{id}: {status}\n"),
                };
                emit(&multi, &line);
            }
            None => emit(&multi, &format!("{status}\n")),
        }
    }
    for b in bars.values() {
        b.finish_and_clear();
    }
    Ok(result)
}
