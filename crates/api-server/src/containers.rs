use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use berth_api_types::container::{CreateRequest, InspectResponse, NetworkingConfig};
use berth_api_types::ApiError;
use bytes::Bytes;

use crate::backend::{AttachOptions, ContainerListOptions, LogsOptions, WaitCondition};
use crate::error::{json_body, Error, HandlerResult};
use crate::hijack::{content_type, hijack, take_upgrade};
use crate::query::Query;
use crate::version::ApiVersion;
use crate::AppState;

/// Docker's refusal of a create naming several networks below API 1.44 (the message of
/// Docker 25+; 20.10 said "Container cannot be connected to network endpoints: ...").
fn check_endpoint_count(
    version: Option<ApiVersion>,
    nc: Option<&NetworkingConfig>,
) -> Result<(), ApiError> {
    let Some(eps) = nc.and_then(|nc| nc.endpoints_config.as_ref()) else {
        return Ok(());
    };
    if eps.len() > 1 && version.is_some_and(|v| v < ApiVersion(1, 44)) {
        let names: Vec<&str> = eps.keys().map(String::as_str).collect();
        return Err(ApiError::invalid(format!(
            "Container cannot be created with multiple network endpoints: {}",
            names.join(", ")
        )));
    }
    Ok(())
}

pub async fn create(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
    version: Option<Extension<ApiVersion>>,
    body: Bytes,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let mut req: CreateRequest = json_body(
        &body,
        "config cannot be empty in order to create a container",
    )?;
    check_endpoint_count(version.map(|v| v.0), req.networking_config.as_ref())?;
    req.platform = q.string("platform");
    let resp = b.container_create(q.string("name"), req).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

pub async fn list(
    State(b): State<AppState>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let limit = q.int("limit")?.filter(|n| *n > 0).map(|n| n as usize);
    let opts = ContainerListOptions {
        all: q.bool("all")?,
        limit,
        size: q.bool("size")?,
        filters: q.filters()?,
    };
    Ok(Json(b.container_list(opts).await?))
}

/// Below API 1.45 dockerd lists the container's short id and hostname among the `Aliases`
/// of each user-defined network (moby's `getContainersByName`); clients of that era (compose
/// v1) look for the short id there to tell whether a container's network is set up.
fn legacy_aliases(resp: &mut InspectResponse) {
    let short: String = resp.id.chars().take(12).collect();
    let hostname = resp.config.hostname.clone();
    for (name, ep) in resp.network_settings.networks.iter_mut() {
        let predefined = matches!(name.as_str(), "bridge" | "default" | "host" | "none")
            || name.starts_with("container:");
        if predefined {
            continue;
        }
        let aliases = ep.aliases.get_or_insert_with(Vec::new);
        for extra in [&short, &hostname] {
            if !extra.is_empty() && !aliases.contains(extra) {
                aliases.push(extra.clone());
            }
        }
    }
}

pub async fn inspect(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    version: Option<Extension<ApiVersion>>,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let mut resp = b.container_inspect(&id, q.bool("size")?).await?;
    if version.is_some_and(|v| v.0 < ApiVersion(1, 45)) {
        legacy_aliases(&mut resp);
    }
    Ok(Json(resp))
}

pub async fn start(State(b): State<AppState>, Path(id): Path<String>) -> HandlerResult<StatusCode> {
    b.container_start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.container_stop(&id, q.string("signal"), q.int("t")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.container_restart(&id, q.string("signal"), q.int("t")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.container_kill(&id, q.string("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers with headers at once and writes the body when the condition is met: `docker run`
/// waits for these headers before it starts the container.
pub async fn wait(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let condition = match q.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(Error(ApiError::invalid(format!(
                "invalid condition: {other:?}"
            ))))
        }
    };
    let fut = b.container_wait(&id, condition).await?;
    let stream = futures_util::stream::once(async move {
        let resp = fut.await;
        let mut line = serde_json::to_vec(&resp).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn remove(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.container_remove(&id, q.bool("force")?, q.bool("v")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let name = q
        .string("name")
        .ok_or_else(|| Error(ApiError::invalid("Neither old nor new names may be empty")))?;
    b.container_rename(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn top(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    Ok(Json(b.container_top(&id, q.string("ps_args")).await?))
}

pub fn size_params(q: &Query) -> Result<(u16, u16), Error> {
    let h = q.int("h")?.unwrap_or(0);
    let w = q.int("w")?.unwrap_or(0);
    let (Ok(h), Ok(w)) = (u16::try_from(h), u16::try_from(w)) else {
        return Err(Error(ApiError::invalid("invalid terminal size")));
    };
    Ok((h, w))
}

pub async fn resize(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let (h, w) = size_params(&q)?;
    b.container_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// Docker's `since`/`until`: unix seconds with an optional fraction (the CLI converts durations and dates).
fn unix_time(q: &Query, key: &str) -> Result<f64, Error> {
    match q.get(key) {
        None | Some("") => Ok(0.0),
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| Error(ApiError::invalid(format!("invalid value for {key}: {v:?}")))),
    }
}

pub async fn logs(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let tail = match q.get("tail") {
        None | Some("") | Some("all") => None,
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| Error(ApiError::invalid(format!("invalid tail value {v:?}"))))?,
        ),
    };
    let opts = LogsOptions {
        follow: q.bool("follow")?,
        stdout: q.bool("stdout")?,
        stderr: q.bool("stderr")?,
        since: unix_time(&q, "since")?,
        until: unix_time(&q, "until")?,
        timestamps: q.bool("timestamps")?,
        tail,
    };
    if !opts.stdout && !opts.stderr {
        return Err(Error(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        )));
    }
    let (tty, stream) = b.container_logs(&id, opts).await?;
    Ok((
        [(header::CONTENT_TYPE, content_type(tty))],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn attach(
    State(b): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let opts = AttachOptions {
        stream: q.bool("stream")?,
        logs: q.bool("logs")?,
        stdin: q.bool("stdin")?,
        stdout: q.bool("stdout")?,
        stderr: q.bool("stderr")?,
        detach_keys: q.string("detachKeys"),
    };
    let session = b.container_attach(&id, opts).await?;
    let (up, wants, body) = take_upgrade(req);
    Ok(hijack(up, wants, body, session))
}

pub async fn pause(State(b): State<AppState>, Path(id): Path<String>) -> HandlerResult<StatusCode> {
    b.container_pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> HandlerResult<StatusCode> {
    b.container_unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_clients_see_the_short_id_and_hostname_among_aliases() {
        let mut resp: InspectResponse = serde_json::from_value(serde_json::json!({
            "Id": "0123456789abcdef0123",
            "Config": {"Hostname": "web"},
            "NetworkSettings": {"Networks": {
                "app": {"Aliases": ["x", "web"]},
                "other": {"Aliases": null},
                "bridge": {"Aliases": null}
            }}
        }))
        .unwrap();
        legacy_aliases(&mut resp);
        let nets = &resp.network_settings.networks;
        assert_eq!(
            nets["app"].aliases.as_deref(),
            Some(&["x".to_string(), "web".into(), "0123456789ab".into()][..])
        );
        assert_eq!(
            nets["other"].aliases.as_deref(),
            Some(&["0123456789ab".to_string(), "web".into()][..])
        );
        assert_eq!(nets["bridge"].aliases, None);
    }

    #[test]
    fn several_endpoints_need_api_1_44() {
        let nc: NetworkingConfig =
            serde_json::from_str(r#"{"EndpointsConfig":{"b":{},"a":{}}}"#).unwrap();
        let e = check_endpoint_count(Some(ApiVersion(1, 43)), Some(&nc)).unwrap_err();
        assert_eq!(e.kind, berth_api_types::ErrorKind::InvalidParameter);
        assert_eq!(
            e.message,
            "Container cannot be created with multiple network endpoints: a, b"
        );
        assert!(check_endpoint_count(Some(ApiVersion(1, 44)), Some(&nc)).is_ok());
        assert!(check_endpoint_count(None, Some(&nc)).is_ok());
        let one: NetworkingConfig =
            serde_json::from_str(r#"{"EndpointsConfig":{"a":{}}}"#).unwrap();
        assert!(check_endpoint_count(Some(ApiVersion(1, 24)), Some(&one)).is_ok());
        assert!(check_endpoint_count(Some(ApiVersion(1, 24)), None).is_ok());
    }
}
