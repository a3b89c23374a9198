//! `GET /system/df`: the object types asked for (`type`, API 1.42+), and the answer's shape by
//! version: the legacy lists (`LayersSize`, `Images`, `Containers`, `Volumes`, `BuildCache`)
//! until 1.52, the per-type summaries (`ImageUsage`, `ContainerUsage`, `VolumeUsage`,
//! `BuildCacheUsage`, with their `Items` when `verbose`) from 1.52.

use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use axum::Json;
use berth_api_types::prune::DiskUsage;
use berth_api_types::ApiError;
use serde_json::{json, Map, Value};

use crate::backend::DiskUsageOptions;
use crate::compat::{shape, Behaviour, Change};
use crate::containers::to_value;
use crate::error::{Error, HandlerResult};
use crate::query::Query;
use crate::AppState;

/// What the answer carries, decided from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfShape {
    pub types: DiskUsageOptions,
    /// The legacy top-level lists.
    pub legacy: bool,
    /// The per-type summaries.
    pub summaries: bool,
    /// `Items` in the summaries.
    pub items: bool,
}

/// dockerd's reading of `type` and `verbose` for version `b`.
pub fn decide(q: &Query, b: Behaviour) -> Result<DfShape, ApiError> {
    let asked = q.all("type");
    let types = if !b.has(Change::DiskUsageTypeParam) || asked.is_empty() {
        DiskUsageOptions::default()
    } else {
        let mut t = DiskUsageOptions {
            containers: false,
            images: false,
            volumes: false,
            build_cache: false,
        };
        for typ in &asked {
            match typ.as_str() {
                "container" => t.containers = true,
                "image" => t.images = true,
                "volume" => t.volumes = true,
                "build-cache" => t.build_cache = true,
                other => return Err(ApiError::invalid(format!("unknown object type: {other}"))),
            }
        }
        t
    };
    if !b.has(Change::DiskUsageSummaries) {
        return Ok(DfShape {
            types,
            legacy: true,
            summaries: false,
            items: false,
        });
    }
    let verbose = match q.get("verbose").filter(|v| !v.is_empty()) {
        Some(v) => Some(
            crate::query::parse_bool(v)
                .ok_or_else(|| ApiError::invalid(format!("invalid value for verbose: {v}")))?,
        ),
        None => None,
    };
    let legacy = verbose.is_none() && !b.has(Change::DiskUsageLegacyFieldsRemoved);
    Ok(DfShape {
        types,
        legacy,
        summaries: true,
        items: verbose == Some(true),
    })
}

fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn summary(
    items: &[Value],
    active: impl Fn(&Value) -> bool,
    size: impl Fn(&Value) -> i64,
) -> Map<String, Value> {
    let total_size: i64 = items.iter().map(&size).filter(|s| *s > 0).sum();
    let reclaimable: i64 = items
        .iter()
        .filter(|i| !active(i))
        .map(&size)
        .filter(|s| *s > 0)
        .sum();
    let mut m = Map::new();
    m.insert(
        "ActiveCount".into(),
        json!(items.iter().filter(|i| active(i)).count()),
    );
    m.insert("TotalCount".into(), json!(items.len()));
    m.insert("Reclaimable".into(), json!(reclaimable));
    m.insert("TotalSize".into(), json!(total_size));
    m
}

/// The answer for `du` (computed for `s.types`) at behaviour `b`.
pub fn render(du: &DiskUsage, s: DfShape, b: Behaviour) -> Result<Value, Error> {
    let mut images = to_value(&du.images)?;
    if let Some(list) = images.as_array_mut() {
        for i in list.iter_mut().filter_map(Value::as_object_mut) {
            shape::virtual_size(i, b);
        }
    }
    let containers = to_value(&du.containers)?;
    let volumes = to_value(&du.volumes)?;
    let mut cache = Value::Array(du.build_cache.clone());
    if !b.has(Change::BuildCacheParentRemoved) {
        for r in cache
            .as_array_mut()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            r.remove("Parents");
            r.insert("Parent".into(), json!(""));
        }
    }
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let mut out = Map::new();
    if s.legacy {
        if s.types.images {
            out.insert("LayersSize".into(), json!(du.layers_size));
            out.insert("Images".into(), images.clone());
        }
        if s.types.containers {
            out.insert("Containers".into(), containers.clone());
        }
        if s.types.volumes {
            out.insert("Volumes".into(), volumes.clone());
        }
        if s.types.build_cache {
            out.insert("BuildCache".into(), cache.clone());
        }
    }
    if s.summaries {
        let mut usage = |key: &str, items: &Value, mut m: Map<String, Value>| {
            if s.items {
                m.insert("Items".into(), items.clone());
            }
            out.insert(key.into(), Value::Object(m));
        };
        if s.types.images {
            let mut m = summary(
                &list(&images),
                |i| int(i, "Containers") > 0,
                |i| int(i, "Size"),
            );
            m.insert("TotalSize".into(), json!(du.layers_size));
            usage("ImageUsage", &images, m);
        }
        if s.types.containers {
            let running = |c: &Value| {
                matches!(
                    c.get("State").and_then(Value::as_str),
                    Some("running" | "paused" | "restarting")
                )
            };
            let m = summary(&list(&containers), running, |c| int(c, "SizeRw"));
            usage("ContainerUsage", &containers, m);
        }
        if s.types.volumes {
            let usage_of = |v: &Value, k: &str| {
                v.get("UsageData")
                    .and_then(|u| u.get(k))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            let m = summary(
                &list(&volumes),
                |v| usage_of(v, "RefCount") > 0,
                |v| usage_of(v, "Size"),
            );
            usage("VolumeUsage", &volumes, m);
        }
        if s.types.build_cache {
            let in_use = |r: &Value| r.get("InUse").and_then(Value::as_bool).unwrap_or(false);
            let mut m = summary(&list(&cache), in_use, |r| int(r, "Size"));
            // Shared records are not reclaimable either.
            let reclaimable: i64 = list(&cache)
                .iter()
                .filter(|r| {
                    !in_use(r) && !r.get("Shared").and_then(Value::as_bool).unwrap_or(false)
                })
                .map(|r| int(r, "Size"))
                .sum();
            m.insert("Reclaimable".into(), json!(reclaimable));
            usage("BuildCacheUsage", &cache, m);
        }
    }
    Ok(Value::Object(out))
}

pub async fn system_df(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let s = decide(&q, be)?;
    let du = b.system_df(s.types).await?;
    Ok(Json(render(&du, s, be)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::ApiVersion;
    use berth_api_types::{container, image, volume};

    fn at(s: &str) -> Behaviour {
        Behaviour::new(ApiVersion::parse(s).unwrap())
    }

    fn usage() -> DiskUsage {
        DiskUsage {
            layers_size: 300,
            images: vec![
                image::Summary {
                    id: "a".into(),
                    size: 100,
                    virtual_size: 100,
                    containers: 1,
                    ..Default::default()
                },
                image::Summary {
                    id: "b".into(),
                    size: 200,
                    virtual_size: 200,
                    containers: 0,
                    ..Default::default()
                },
            ],
            containers: vec![
                container::Summary {
                    id: "c1".into(),
                    state: "running".into(),
                    size_rw: Some(10),
                    ..Default::default()
                },
                container::Summary {
                    id: "c2".into(),
                    state: "exited".into(),
                    size_rw: Some(5),
                    ..Default::default()
                },
            ],
            volumes: vec![volume::Volume {
                name: "v".into(),
                usage_data: Some(volume::UsageData {
                    size: 7,
                    ref_count: 0,
                }),
                ..Default::default()
            }],
            build_cache: vec![
                json!({"ID": "x", "Parents": null, "InUse": false, "Shared": false, "Size": 3}),
            ],
        }
    }

    #[test]
    fn legacy_lists_before_1_52() {
        let q = Query::parse(Some("type=volume"));
        let s = decide(&q, at("1.41")).unwrap();
        assert!(
            s.legacy && !s.summaries && s.types.images,
            "type is ignored before 1.42"
        );
        let v = render(&usage(), s, at("1.41")).unwrap();
        assert_eq!(v["LayersSize"], 300);
        assert_eq!(v["Images"][0]["VirtualSize"], 100);
        assert_eq!(v["BuildCache"][0]["Parent"], "");
        assert!(v.get("ImageUsage").is_none());
        let s = decide(&q, at("1.42")).unwrap();
        assert!(s.types.volumes && !s.types.images);
        let v = render(&usage(), s, at("1.42")).unwrap();
        assert!(v.get("Images").is_none() && v.get("Volumes").is_some());
        assert!(v["Volumes"][0].get("Parents").is_none());
        assert!(decide(&Query::parse(Some("type=nope")), at("1.42")).is_err());
    }

    #[test]
    fn summaries_from_1_52() {
        let none = Query::parse(None);
        let s = decide(&none, at("1.52")).unwrap();
        assert!(s.legacy && s.summaries && !s.items);
        let v = render(&usage(), s, at("1.52")).unwrap();
        assert!(v.get("Images").is_some());
        assert_eq!(v["ImageUsage"]["TotalCount"], 2);
        assert_eq!(v["ImageUsage"]["ActiveCount"], 1);
        assert_eq!(v["ImageUsage"]["Reclaimable"], 200);
        assert_eq!(v["ImageUsage"]["TotalSize"], 300);
        assert_eq!(v["ContainerUsage"]["ActiveCount"], 1);
        assert_eq!(v["ContainerUsage"]["Reclaimable"], 5);
        assert_eq!(v["VolumeUsage"]["Reclaimable"], 7);
        assert_eq!(v["BuildCacheUsage"]["Reclaimable"], 3);
        assert!(v["ImageUsage"].get("Items").is_none());
        let verbose = Query::parse(Some("verbose=1"));
        let s = decide(&verbose, at("1.52")).unwrap();
        assert!(!s.legacy && s.items);
        let v = render(&usage(), s, at("1.52")).unwrap();
        assert!(v.get("Images").is_none());
        assert_eq!(v["ContainerUsage"]["Items"][0]["Id"], "c1");
        let s = decide(&none, at("1.53")).unwrap();
        assert!(!s.legacy && !s.items);
        let v = render(&usage(), s, at("1.53")).unwrap();
        assert!(v.get("LayersSize").is_none() && v.get("Images").is_none());
        assert!(decide(&Query::parse(Some("verbose=maybe")), at("1.53")).is_err());
    }
}
