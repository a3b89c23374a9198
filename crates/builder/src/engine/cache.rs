//! The layer cache: step keys, lookups (the local cache, then `--cache-from` images), and
//! the config-only step every metadata instruction is.

use berth_image::config::{History, ImageConfig};
use sha2::{Digest as _, Sha256};

use super::output::StepOut;
use super::stage::StageCtx;
use super::{fail, Backend, Build, BuildError, ImageState};

/// A config for the next image: the parent's, with history copied and the time refreshed.
pub(crate) fn new_config(parent: &ImageConfig) -> ImageConfig {
    let mut c = parent.clone();
    c.created = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    c.container = None;
    c.container_config = None;
    c
}

pub(crate) fn cache_key(parent: &ImageState, created_by: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.id.as_bytes());
    h.update([0]);
    h.update(parent.layers.join(",").as_bytes());
    h.update([0]);
    h.update(created_by.as_bytes());
    h.update([0]);
    let cfg = serde_json::to_vec(&parent.config.config).unwrap_or_default();
    h.update(&cfg);
    hex::encode(h.finalize())
}

/// The layer cache, then the `--cache-from` images (as Docker's legacy builder does): a
/// source image whose history and layers extend the parent's with this very step gives the
/// step's result without running it. With sources, dockerd's rules: a local hit counts only
/// when it lies on a source's chain, and a step that completes a source is that very image
/// (so the build ends on the source's id).
pub(crate) async fn lookup(
    backend: &dyn Backend,
    key: &str,
    parent: &ImageState,
    created_by: &str,
) -> Option<ImageState> {
    let sources = backend.cache_sources();
    if let Some(hit) = backend.cache_get(key).await {
        if sources.is_empty() || sources.iter().any(|s| on_chain_of(&hit, s)) {
            return Some(hit);
        }
    }
    if let Some(src) = completed_source(sources, parent, created_by) {
        backend.cache_put(key, src).await;
        return Some(src.clone());
    }
    let (cfg, layers) = match_cache_from(sources, parent, created_by)?;
    let base = ImageState {
        layers,
        ..parent.clone()
    };
    let next = backend.commit_config(&base, cfg).await.ok()?;
    backend.cache_put(key, &next).await;
    Some(next)
}

/// Finds the step `created_by` on top of `parent` in a `--cache-from` image: the image's
/// history and layers must start with the parent's, and its next history entry must be this
/// step. Returns the step's config (the parent's config, which already carries a config
/// step's change, with the source's history and layers up to the step) and layer chain.
pub fn match_cache_from(
    sources: &[ImageState],
    parent: &ImageState,
    created_by: &str,
) -> Option<(ImageConfig, Vec<String>)> {
    let ph = &parent.config.history;
    let pd = &parent.config.rootfs.diff_ids;
    let same = |a: &History, b: &History| {
        a.created_by == b.created_by
            && a.empty_layer.unwrap_or(false) == b.empty_layer.unwrap_or(false)
    };
    for src in sources {
        let sh = &src.config.history;
        let sd = &src.config.rootfs.diff_ids;
        if sh.len() <= ph.len()
            || !ph.iter().zip(sh.iter()).all(|(a, b)| same(a, b))
            || sd.len() < pd.len()
            || sd[..pd.len()] != pd[..]
            || src.layers.len() != sd.len()
        {
            continue;
        }
        let step = &sh[ph.len()];
        if step.created_by.as_deref() != Some(created_by) {
            continue;
        }
        let n = pd.len() + usize::from(!step.empty_layer.unwrap_or(false));
        if n > sd.len() {
            continue;
        }
        let mut cfg = parent.config.clone();
        cfg.history = sh[..=ph.len()].to_vec();
        cfg.rootfs.diff_ids = sd[..n].to_vec();
        cfg.created = step.created.clone().or_else(|| src.config.created.clone());
        cfg.container = None;
        cfg.container_config = None;
        return Some((cfg, src.layers[..n].to_vec()));
    }
    None
}

/// Whether `img` is `src` or one of the images it was built on: its history entries (times
/// included) and its layers begin `src`'s.
fn on_chain_of(img: &ImageState, src: &ImageState) -> bool {
    if img.id == src.id {
        return true;
    }
    let (ih, sh) = (&img.config.history, &src.config.history);
    ih.len() < sh.len()
        && ih.iter().zip(sh.iter()).all(|(a, b)| a == b)
        && src.layers.starts_with(&img.layers)
}

/// The `--cache-from` image this step completes: it matches (see [`match_cache_from`]) and
/// the step is its last.
fn completed_source<'a>(
    sources: &'a [ImageState],
    parent: &ImageState,
    created_by: &str,
) -> Option<&'a ImageState> {
    sources.iter().find(|src| {
        src.config.history.len() == parent.config.history.len() + 1
            && match_cache_from(std::slice::from_ref(src), parent, created_by)
                .is_some_and(|(_, layers)| layers == src.layers)
    })
}

pub(crate) fn push_history(cfg: &mut ImageConfig, created_by: &str, empty: bool) {
    cfg.history.push(History {
        created: cfg.created.clone(),
        created_by: Some(created_by.to_string()),
        empty_layer: empty.then_some(true),
        ..Default::default()
    });
}

/// A step that only changes the config (ENV, LABEL, CMD...): cached like any other.
/// A step that only changes the config (ENV, LABEL, CMD...): cached like any other.
pub(crate) async fn config_step(
    b: &Build<'_>,
    ctx: &mut StageCtx,
    created_by: String,
    out: &StepOut<'_, '_>,
) -> Result<(), BuildError> {
    // The key covers the config *after* the change: ctx.state.config already has it.
    let key = cache_key(&ctx.state, &created_by);
    if !b.opts.no_cache {
        if let Some(hit) = lookup(b.backend, &key, &ctx.state, &created_by).await {
            out.line(" ---> Using cache\n");
            ctx.state = hit;
            return Ok(());
        }
    }
    let mut cfg = new_config(&ctx.state.config);
    push_history(&mut cfg, &created_by, true);
    let next = b
        .backend
        .commit_config(&ctx.state, cfg)
        .await
        .map_err(fail)?;
    b.backend.cache_put(&key, &next).await;
    ctx.state = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::digest::Digest;

    fn state(id: &str, steps: &[&str]) -> ImageState {
        let mut s = ImageState {
            id: id.into(),
            ..Default::default()
        };
        for (i, c) in steps.iter().enumerate() {
            s.config.history.push(History {
                created_by: Some(c.to_string()),
                created: Some(format!("t{i}")),
                ..Default::default()
            });
            s.config
                .rootfs
                .diff_ids
                .push(Digest::sha256_of(c.as_bytes()));
            s.layers.push(format!("layer-{c}"));
        }
        s
    }

    #[test]
    fn cache_from_sources_limit_local_hits_and_end_on_the_source() {
        let base = state("sha256:base", &["ADD rootfs"]);
        let src = state("sha256:src", &["ADD rootfs", "RUN a", "RUN b"]);
        let sources = vec![src.clone()];
        // The source's own ancestors (same history, times included, and layers) are on its
        // chain; a rebuild of the same steps elsewhere is not.
        let mid = state("sha256:mid", &["ADD rootfs", "RUN a"]);
        assert!(on_chain_of(&mid, &src));
        assert!(on_chain_of(&src, &src));
        let mut elsewhere = mid.clone();
        elsewhere.config.history[1].created = Some("later".into());
        assert!(!on_chain_of(&elsewhere, &src));
        // Only the step that ends the source completes it, and gives the source itself.
        assert!(completed_source(&sources, &base, "RUN a").is_none());
        let done = completed_source(&sources, &mid, "RUN b").expect("the source");
        assert_eq!(done.id, "sha256:src");
        assert!(completed_source(&sources, &mid, "RUN c").is_none());
    }
}
