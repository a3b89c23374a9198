//! Fuzzes everything in `berth-builder` that reads untrusted text from a build context:
//! the Dockerfile parser, the typed instructions and BuildKit flag parsers (`RUN --mount`
//! CSV records, `--network`, `--security`, `# syntax=`), the `.dockerignore` parser and
//! matcher, heredoc detection and the shell-style variable substitution. None of them may
//! panic (or hang) on any input; errors must come back as values.

#![no_main]

use std::collections::HashMap;

use berth_builder::{flags, ignore, instruction, parser, shell, Ignore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Docker reads a Dockerfile as bytes and rejects what is not text; so does the daemon
    // (`read_to_string`). Lossy decoding still exercises odd characters from any input.
    let owned;
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(_) => {
            owned = String::from_utf8_lossy(data).into_owned();
            &owned
        }
    };

    if let Ok(df) = parser::parse(text) {
        if let Some(s) = &df.syntax {
            let _ = flags::check_syntax(s);
        }
        // Everything the engine does with a parsed instruction before running it.
        let mut vars: shell::Vars = HashMap::new();
        vars.insert("A".into(), "a b".into());
        vars.insert("EMPTY".into(), String::new());
        for inst in &df.instructions {
            let args = inst.args.text();
            let _ = inst.flag("from");
            let _ = shell::expand_word(&args, &vars, df.escape);
            let _ = shell::expand_words(&args, &vars, df.escape);
            let _ = shell::name_values(&args, inst.cmd == "ENV");
            let _ = shell::raw_words(&args);
            let _ = parser::heredoc_specs(&args);
            // The typed instruction, and every flag value through its parser, raw and
            // expanded (the engine parses mounts after substitution).
            let _ = instruction::command(inst);
            for (_, v) in &inst.flags {
                let Some(v) = v else { continue };
                let _ = flags::parse_mount(v);
                if let Ok(e) = shell::expand_word(v, &vars, df.escape) {
                    let _ = flags::parse_mount(&e);
                }
                let _ = flags::parse_network(v);
                let _ = flags::parse_security(v);
                let _ = flags::parse_size(v);
            }
        }
    }
    // Each line as a mount spec, a CSV record and a frontend name on its own.
    for line in text.lines().take(32) {
        if let Ok(m) = flags::parse_mount(line) {
            let _ = m.secret_id();
        }
        let _ = flags::csv_fields(line);
        let _ = flags::check_syntax(line);
    }

    // The same text through the per-line entry points with both escape characters.
    for line in text.lines().take(64) {
        for escape in ['\\', '`'] {
            let _ = parser::parse_line(line, 1, escape);
            let _ = shell::expand_word(line, &HashMap::new(), escape);
        }
    }

    // As a .dockerignore: parse it and match its own lines (and a few fixed paths) as paths.
    let ign = Ignore::parse(text);
    for path in text.lines().take(16).chain(["a", "a/b/c.log", "./x", "/"]) {
        let _ = ign.excluded(path);
        let _ = ign.may_include_below(path);
    }
    // Raw glob matching, split at the first newline into pattern and name.
    if let Some((p, s)) = text.split_once('\n') {
        if p.len() <= 64 && s.len() <= 256 {
            let _ = ignore::glob(p.as_bytes(), s.as_bytes());
        }
    }
});
