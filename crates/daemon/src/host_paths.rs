//! Messages for clients without the daemon's host paths: where the data root is, where a
//! build's context was unpacked. A client learns what failed, not the layout of the host.

use std::path::Path;

use crate::Daemon;

/// `message` with every occurrence of a `(path, shown)` pair's path replaced by its `shown`
/// text, in order (list a path below another first).
pub(crate) fn hide(message: &str, paths: &[(&Path, &str)]) -> String {
    let mut out = message.to_string();
    for (path, shown) in paths {
        let p = path.display().to_string();
        if p.len() > 1 {
            out = out.replace(&p, shown);
        }
    }
    out
}

impl Daemon {
    /// A build failure as the client reads it: a path in the unpacked context
    /// (`<work>/context`) relative to the context, any other path below the data or exec
    /// root shown below `<data-root>` or `<exec-root>`.
    pub(crate) fn build_error(&self, message: &str, work: &Path) -> String {
        let context = work.join("context");
        let relative = message.replace(&format!("{}/", context.display()), "");
        hide(
            &relative,
            &[
                (&context, "the build context"),
                (&self.cfg.data_root, "<data-root>"),
                (&self.cfg.exec_root, "<exec-root>"),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_are_hidden() {
        let roots = [
            (Path::new("/var/lib/berth"), "<data-root>"),
            (Path::new("/run/berth"), "<exec-root>"),
        ];
        assert_eq!(
            hide(
                "writing /var/lib/berth/image/x: disk full; /run/berth/y",
                &roots
            ),
            "writing <data-root>/image/x: disk full; <exec-root>/y"
        );
        assert_eq!(hide("nothing here", &roots), "nothing here");
    }
}
