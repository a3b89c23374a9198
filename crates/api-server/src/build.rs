//! `POST /build`, `POST /commit`, `GET /containers/{id}/changes`, `GET /containers/{id}/export`.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::container::{HostConfig, Ulimit};
use berth_api_types::{gojson, ApiError};

use crate::backend::{BuildOptions, CommitOptions};
use crate::error::{Error, HandlerResult};
use crate::query::Query;
use crate::AppState;

/// A JSON object query parameter (`buildargs`, `labels`); empty means none.
fn json_map<V: serde::de::DeserializeOwned>(
    q: &Query,
    key: &str,
) -> Result<BTreeMap<String, V>, Error> {
    match q.string(key).filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => gojson::from_str(&s)
            .map_err(|e| Error(ApiError::invalid(format!("invalid {key} parameter: {e}")))),
    }
}

/// The host configuration a legacy build gives its RUN steps' containers, from the query as
/// dockerd reads it (`extrahosts` repeated, `ulimits` a JSON array, the rest numbers and
/// strings).
fn step_host_config(q: &Query) -> Result<HostConfig, Error> {
    let int = |k: &str| -> Result<i64, Error> { Ok(q.int(k).map_err(Error)?.unwrap_or(0)) };
    let ulimits: Vec<Ulimit> = match q.string("ulimits") {
        None => Vec::new(),
        Some(s) => gojson::from_str::<Option<Vec<Ulimit>>>(&s)
            .map_err(|e| Error(ApiError::invalid(format!("invalid ulimits parameter: {e}"))))?
            .unwrap_or_default(),
    };
    let extra_hosts: Vec<String> = q
        .all("extrahosts")
        .into_iter()
        .filter(|h| !h.is_empty())
        .collect();
    Ok(HostConfig {
        network_mode: q.string("networkmode").unwrap_or_default(),
        extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
        shm_size: int("shmsize")?,
        memory: int("memory")?,
        memory_swap: int("memswap")?,
        cpu_shares: int("cpushares")?,
        cpu_period: int("cpuperiod")?,
        cpu_quota: int("cpuquota")?,
        cpuset_cpus: q.string("cpusetcpus").unwrap_or_default(),
        cpuset_mems: q.string("cpusetmems").unwrap_or_default(),
        cgroup_parent: q.string("cgroupparent").unwrap_or_default(),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        ..Default::default()
    })
}

pub async fn build(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
    req: Request,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let opts = BuildOptions {
        dockerfile: q.string("dockerfile").unwrap_or_default(),
        tags: q.all("t"),
        build_args: json_map(&q, "buildargs")?,
        labels: json_map(&q, "labels")?,
        target: q.string("target").unwrap_or_default(),
        no_cache: q.bool("nocache")?,
        rm: q.bool_or("rm", true)?,
        force_rm: q.bool("forcerm")?,
        quiet: q.bool("q")?,
        remote: q.string("remote").unwrap_or_default(),
        step_host: step_host_config(&q)?,
        secrets: q.all("secret"),
        ssh: q.all("ssh"),
        build_contexts: q.all("buildcontext"),
        outputs: match q.string("outputs").filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => gojson::from_str(&s)
                .map_err(|e| Error(ApiError::invalid(format!("invalid outputs parameter: {e}"))))?,
        },
        cache_from: match q.string("cachefrom").filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => gojson::from_str(&s).map_err(|e| {
                Error(ApiError::invalid(format!(
                    "invalid cachefrom parameter: {e}"
                )))
            })?,
        },
    };
    let body = crate::drain::body_stream(req);
    let stream = b.image_build(body, opts).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn commit(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let container = q
        .string("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error(ApiError::invalid("container name or id must be given")))?;
    // A body of `null` means no config, as an empty one does (Go leaves the pointer nil).
    let config = if body.iter().all(|c| c.is_ascii_whitespace()) {
        None
    } else {
        gojson::from_slice::<Option<berth_api_types::container::Config>>(&body)
            .map_err(|e| Error(ApiError::invalid(format!("invalid commit config: {e}"))))?
    };
    let opts = CommitOptions {
        container,
        repo: q.string("repo").unwrap_or_default(),
        tag: q.string("tag").unwrap_or_default(),
        comment: q.string("comment").unwrap_or_default(),
        author: q.string("author").unwrap_or_default(),
        changes: q.all("changes"),
        pause: q.bool_or("pause", true)?,
        config,
    };
    let id = b.container_commit(opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

pub async fn changes(State(b): State<AppState>, Path(id): Path<String>) -> HandlerResult<Response> {
    Ok(Json(b.container_changes(&id).await?).into_response())
}

pub async fn export(State(b): State<AppState>, Path(id): Path<String>) -> HandlerResult<Response> {
    let stream = b.container_export(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn prune(State(b): State<AppState>) -> HandlerResult<Response> {
    let (deleted, space) = b.build_prune().await?;
    Ok(
        Json(serde_json::json!({ "CachesDeleted": deleted, "SpaceReclaimed": space }))
            .into_response(),
    )
}
