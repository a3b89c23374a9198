//! Housekeeping: `POST /containers/prune`, `POST /images/prune`, `GET /system/df`
//! (`/volumes/prune` lives with the volumes).

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api_types::image::DeleteItem;
use berth_api_types::prune::{ContainerPruneResponse, DiskUsage, ImagePruneResponse};
use berth_api_types::ApiError;
use berth_services::{ContainerListOptions, DiskUsageOptions, ImageListOptions};

use crate::model::unix_seconds;
use crate::{lock, Daemon, Result};

/// An `until` filter value: unix seconds, RFC 3339, or a Go duration before now (`24h`, `10m`).
pub fn parse_until(v: &str, now: i64) -> Option<i64> {
    if let Ok(n) = v.parse::<f64>() {
        return Some(crate::units::float_to_i64(n));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    let mut total = 0f64;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(now - crate::units::float_to_i64(total))
}

/// The `until`, `label` and `label!` filters shared by the prune endpoints.
pub(crate) struct PruneFilters {
    until: Option<i64>,
    labels: Vec<String>,
    not_labels: Vec<String>,
    dangling: Option<bool>,
}

impl PruneFilters {
    pub(crate) fn parse(
        filters: &[(String, Vec<String>)],
        allow_dangling: bool,
    ) -> Result<PruneFilters> {
        let now = chrono::Utc::now().timestamp();
        let mut f = PruneFilters {
            until: None,
            labels: vec![],
            not_labels: vec![],
            dangling: None,
        };
        for (k, vals) in filters {
            for v in vals {
                match k.as_str() {
                    "until" => {
                        f.until = Some(parse_until(v, now).ok_or_else(|| {
                            ApiError::invalid(format!("invalid filter 'until={v}'"))
                        })?)
                    }
                    "label" => f.labels.push(v.clone()),
                    "label!" => f.not_labels.push(v.clone()),
                    "dangling" if allow_dangling => {
                        f.dangling = Some(match v.as_str() {
                            "1" | "true" | "True" => true,
                            "0" | "false" | "False" => false,
                            _ => {
                                return Err(ApiError::invalid(format!(
                                    "invalid filter 'dangling={v}'"
                                )))
                            }
                        })
                    }
                    _ => return Err(ApiError::invalid(format!("invalid filter '{k}'"))),
                }
            }
        }
        Ok(f)
    }

    pub(crate) fn matches(&self, created: i64, labels: &BTreeMap<String, String>) -> bool {
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        };
        self.until.is_none_or(|u| created < u)
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
    }
}

impl Daemon {
    pub async fn containers_prune(
        self: &Arc<Self>,
        filters: &[(String, Vec<String>)],
    ) -> Result<ContainerPruneResponse> {
        let f = PruneFilters::parse(filters, false)?;
        let stopped: Vec<crate::model::Container> = lock(&self.containers)
            .values()
            .filter(|c| !c.state.status.is_active())
            .cloned()
            .collect();
        let mut out = ContainerPruneResponse::default();
        for c in stopped {
            let labels = c.config.labels.clone().unwrap_or_default();
            if !f.matches(unix_seconds(&c.created), &labels) {
                continue;
            }
            let size = crate::sys::dir_size(&self.runtime.upper_dir(&c.id));
            if self.remove_container(&c.id, false).await.is_ok() {
                out.containers_deleted.push(c.id.clone());
                out.space_reclaimed += size;
            }
        }
        Ok(out)
    }

    pub async fn images_prune(
        &self,
        filters: &[(String, Vec<String>)],
    ) -> Result<ImagePruneResponse> {
        let f = PruneFilters::parse(filters, true)?;
        let dangling_only = f.dangling.unwrap_or(true);
        let used: Vec<String> = lock(&self.containers)
            .values()
            .map(|c| c.image_id.clone())
            .collect();
        let images = self.image_list(ImageListOptions {
            all: true,
            filters: Vec::new(),
        })?;
        let mut out = ImagePruneResponse::default();
        for img in images {
            if used.contains(&img.id) {
                continue;
            }
            let dangling =
                img.repo_tags.is_empty() || img.repo_tags.iter().all(|t| t == "<none>:<none>");
            if dangling_only && !dangling {
                continue;
            }
            if !f.matches(img.created, &img.labels) {
                continue;
            }
            match self.image_remove(&img.id, true, false).await {
                Ok(items) => {
                    if items.iter().any(|i| matches!(i, DeleteItem::Deleted(_))) {
                        out.space_reclaimed += u64::try_from(img.size).unwrap_or(0);
                    }
                    out.images_deleted.extend(items);
                }
                Err(e) => tracing::debug!(image = %img.id, "prune: {}", e.message),
            }
        }
        Ok(out)
    }

    /// `system df`: the lists of the object types `opts` asks for (the others left empty).
    pub fn system_df(&self, opts: DiskUsageOptions) -> Result<DiskUsage> {
        let mut out = DiskUsage::default();
        if opts.images {
            let images = self.image_list(ImageListOptions {
                all: true,
                filters: Vec::new(),
            })?;
            out.layers_size = images.iter().map(|i| i.size).sum();
            out.images = images;
        }
        if opts.containers {
            out.containers = self.container_list(ContainerListOptions {
                all: true,
                limit: None,
                size: true,
                filters: Vec::new(),
            })?;
        }
        if opts.volumes {
            out.volumes = self.volume_usage()?;
        }
        if opts.build_cache {
            out.build_cache = self.build_cache_usage();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_values() {
        assert_eq!(parse_until("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_until("24h", 100_000), Some(100_000 - 86_400));
        assert_eq!(parse_until("1h30m", 10_000), Some(10_000 - 5_400));
        assert_eq!(parse_until("2024-01-01T00:00:00Z", 0), Some(1_704_067_200));
        assert_eq!(parse_until("soon", 0), None);
    }

    #[test]
    fn prune_filters() {
        let f = PruneFilters::parse(
            &[
                ("label".into(), vec!["keep=no".into()]),
                ("until".into(), vec!["100".into()]),
            ],
            false,
        )
        .unwrap();
        let l = BTreeMap::from([("keep".to_string(), "no".to_string())]);
        assert!(f.matches(50, &l));
        assert!(!f.matches(150, &l));
        assert!(!f.matches(50, &BTreeMap::new()));
        assert!(PruneFilters::parse(&[("dangling".into(), vec!["true".into()])], false).is_err());
        assert!(PruneFilters::parse(&[("dangling".into(), vec!["x".into()])], true).is_err());
    }
}
