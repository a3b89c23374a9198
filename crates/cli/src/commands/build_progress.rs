//! `berth build --progress auto|tty` on a terminal: a live view of the legacy builder's
//! stream. The current step's header and the last lines of its output are redrawn in place;
//! when the next step starts, the finished one collapses to a single line (with `CACHED` when
//! it came from the cache). `plain`, or stdout not being a terminal, keeps the line stream.

use std::collections::VecDeque;
use std::io::Write;

use berth_client::JsonStream;
use serde_json::Value;

use crate::progress::StreamResult;
use crate::util::CliError;

/// Output lines of the running step kept on screen.
const TAIL: usize = 6;

/// The build stream folded into permanent lines and a live area.
#[derive(Debug, Default)]
pub struct LiveView {
    step: Option<String>,
    cached: bool,
    tail: VecDeque<String>,
    partial: String,
}

impl LiveView {
    /// Feeds `stream` text; returns the lines that are final (finished steps, collapsed, and
    /// text outside any step).
    pub fn feed(&mut self, text: &str) -> Vec<String> {
        self.partial.push_str(text);
        let mut done = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches(['\n', '\r']), &mut done);
        }
        done
    }

    fn line(&mut self, line: &str, done: &mut Vec<String>) {
        if line.starts_with("Step ") {
            done.extend(self.finish());
            self.step = Some(line.to_string());
        } else if self.step.is_none() {
            done.push(line.to_string());
        } else if line.starts_with("Successfully ") {
            done.extend(self.finish());
            done.push(line.to_string());
        } else if line == " ---> Using cache" {
            self.cached = true;
        } else if !line.starts_with(" ---> ") {
            self.tail.push_back(line.to_string());
            while self.tail.len() > TAIL {
                self.tail.pop_front();
            }
        }
    }

    /// Collapses the current step (if any) to its final line.
    pub fn finish(&mut self) -> Option<String> {
        let step = self.step.take()?;
        self.tail.clear();
        let cached = std::mem::take(&mut self.cached);
        Some(if cached {
            format!("=> CACHED {step}")
        } else {
            format!("=> {step}")
        })
    }

    /// The live area: the running step and its last output lines, cut to `width` columns.
    pub fn live(&self, width: usize) -> Vec<String> {
        let Some(step) = &self.step else {
            return Vec::new();
        };
        let cut = |s: String| -> String { s.chars().take(width.max(1)).collect() };
        let mut out = vec![cut(format!("=> {step}"))];
        out.extend(self.tail.iter().map(|l| cut(format!("   | {l}"))));
        out
    }
}

/// Reads the build stream, drawing the live view on the terminal.
pub async fn display(stream: &mut JsonStream) -> Result<StreamResult, CliError> {
    let mut result = StreamResult::default();
    let mut view = LiveView::default();
    let mut out = std::io::stdout();
    let mut drawn = 0usize;
    let width = terminal_width();
    let mut redraw = |out: &mut std::io::Stdout, done: &[String], live: &[String]| {
        let mut buf = String::new();
        if drawn > 0 {
            // Up to the live area's first line, clear to the end of the screen.
            buf.push_str(&format!("\x1b[{drawn}A\r\x1b[J"));
        }
        for l in done.iter().chain(live) {
            buf.push_str(l);
            buf.push('\n');
        }
        drawn = live.len();
        let _ = out.write_all(buf.as_bytes());
        let _ = out.flush();
    };
    while let Some(msg) = stream.next().await {
        let msg = msg.map_err(CliError::from)?;
        if let Some(e) = msg
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
            .or_else(|| msg["error"].as_str().filter(|s| !s.is_empty()))
        {
            // Leave the failing step's output on screen.
            redraw(&mut out, &[], &view.live(width));
            return Err(CliError::new(1, e.to_string()));
        }
        if let Some(aux) = msg.get("aux") {
            result.aux.push(aux.clone());
            continue;
        }
        if let Some(s) = msg["stream"].as_str() {
            let done = view.feed(s);
            redraw(&mut out, &done, &view.live(width));
        }
    }
    let done: Vec<String> = view.finish().into_iter().collect();
    redraw(&mut out, &done, &[]);
    Ok(result)
}

/// Columns available to a live line (one less than the terminal's, so a full line never
/// wraps and the redraw's line count stays right).
fn terminal_width() -> usize {
    let cols = crate::term::size()
        .map(|(_, c)| usize::from(c))
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
        .filter(|&w| w > 1)
        .unwrap_or(80);
    cols - 1
}

/// Whether `--progress` asks for the live view here: `tty`, or `auto` on a terminal.
pub fn wants_live(mode: &str, quiet: bool, stdout_is_terminal: bool) -> bool {
    !quiet && (mode == "tty" || (mode == "auto" && stdout_is_terminal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_collapse_and_output_tails() {
        let mut v = LiveView::default();
        assert_eq!(v.feed("Sending build context\n"), ["Sending build context"]);
        assert!(v.feed("Step 1/3 : FROM busybox\n ---> abc\n").is_empty());
        assert_eq!(v.live(80), ["=> Step 1/3 : FROM busybox"]);
        let done = v.feed("Step 2/3 : RUN seq 10\n ---> Running in 123\n");
        assert_eq!(done, ["=> Step 1/3 : FROM busybox"]);
        // Output split across messages; only the last TAIL lines stay.
        let mut text = String::new();
        for i in 1..=10 {
            text.push_str(&format!("{i}\n"));
        }
        let (a, b) = text.split_at(7);
        assert!(v.feed(a).is_empty() && v.feed(b).is_empty());
        let live = v.live(80);
        assert_eq!(live[0], "=> Step 2/3 : RUN seq 10");
        assert_eq!(
            live[1..],
            ["   | 5", "   | 6", "   | 7", "   | 8", "   | 9", "   | 10"]
        );
        assert_eq!(v.live(8)[0], "=> Step ");
        let done = v.feed(" ---> Removed intermediate container 123\n ---> def\nStep 3/3 : ENV A=1\n ---> Using cache\n ---> 456\n");
        assert_eq!(done, ["=> Step 2/3 : RUN seq 10"]);
        assert_eq!(v.live(80), ["=> Step 3/3 : ENV A=1"]);
        let done = v.feed("Successfully built 456\nSuccessfully tagged x:1\n");
        assert_eq!(
            done,
            [
                "=> CACHED Step 3/3 : ENV A=1",
                "Successfully built 456",
                "Successfully tagged x:1"
            ]
        );
        assert!(v.live(80).is_empty() && v.finish().is_none());
    }

    #[test]
    fn live_only_for_tty_or_auto_on_a_terminal() {
        assert!(wants_live("auto", false, true));
        assert!(!wants_live("auto", false, false));
        assert!(!wants_live("plain", false, true));
        assert!(wants_live("tty", false, false));
        assert!(!wants_live("auto", true, true));
    }
}
