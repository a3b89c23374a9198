use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::container::CreateRequest;
use berth_api_types::ApiError;
use bytes::Bytes;

use crate::backend::{AttachOptions, ContainerListOptions, LogsOptions, WaitCondition};
use crate::compat::{shape, Behaviour, Change};
use crate::error::{json_body, Error, HandlerResult};
use crate::hijack::{content_type, hijack, take_upgrade};
use crate::query::Query;
use crate::AppState;

/// A response value as JSON, for [`shape`] to give it its version's fields.
pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|e| Error(ApiError::internal(e.to_string())))
}

pub async fn create(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let mut req: CreateRequest = json_body(
        &body,
        "Config cannot be empty in order to create a container",
    )?;
    req.platform = q.string("platform");
    let warnings = crate::compat::create::adjust(&mut req, be)?;
    let mut resp = b.container_create(q.string("name"), req).await?;
    resp.warnings.extend(warnings);
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

pub async fn list(
    State(b): State<AppState>,
    be: Behaviour,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let limit = q
        .int("limit")?
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0);
    let opts = ContainerListOptions {
        all: q.bool("all")?,
        limit,
        size: q.bool("size")?,
        filters: q.filters()?,
    };
    let mut v = to_value(&b.container_list(opts).await?)?;
    shape::container_summaries(&mut v, be);
    Ok(Json(v))
}

pub async fn inspect(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<impl IntoResponse> {
    let q = Query::parse(q.as_deref());
    let mut v = to_value(&b.container_inspect(&id, q.bool("size")?).await?)?;
    shape::container_inspect(&mut v, be);
    Ok(Json(v))
}

/// `signal` of stop and restart: API 1.42+.
fn stop_signal(q: &Query, be: Behaviour) -> Option<String> {
    be.has(Change::StopSignal)
        .then(|| q.string("signal"))
        .flatten()
}

pub async fn start(State(b): State<AppState>, Path(id): Path<String>) -> HandlerResult<StatusCode> {
    b.container_start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.container_stop(&id, stop_signal(&q, be), q.int("t")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    b.container_restart(&id, stop_signal(&q, be), q.int("t")?)
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
/// waits for these headers before it starts the container. Clients older than API 1.30 know no
/// conditions and get the headers with the body.
pub async fn wait(
    State(b): State<AppState>,
    be: Behaviour,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    let condition = if !be.has(Change::WaitCondition) {
        WaitCondition::NotRunning
    } else {
        match q.get("condition").unwrap_or("") {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            other => {
                return Err(Error(ApiError::invalid(format!(
                    "invalid condition: {other:?}"
                ))))
            }
        }
    };
    // Before 1.34 a failed removal could only be told by an empty answer.
    let silent_error = condition == WaitCondition::Removed && !be.has(Change::WaitRemovalError);
    let fut = b.container_wait(&id, condition).await?;
    let body = async move {
        let resp = fut.await;
        if silent_error && resp.error.is_some() {
            return Bytes::new();
        }
        let mut line = serde_json::to_vec(&resp).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    };
    if !be.has(Change::WaitCondition) {
        let body = body.await;
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body.await) });
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
    if q.bool("link")? {
        b.container_remove_link(&id).await?;
    } else {
        b.container_remove(&id, q.bool("force")?, q.bool("v")?)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{parent}/{alias}`: a name with a slash is a legacy link's
/// (`docker rm --link web/db`); without `link=1` dockerd would remove the linked container,
/// which berth does not name that way (404).
pub async fn remove_nested(
    State(b): State<AppState>,
    Path((parent, alias)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> HandlerResult<StatusCode> {
    let q = Query::parse(q.as_deref());
    let name = format!("{parent}/{alias}");
    if !q.bool("link")? {
        return Err(Error(ApiError::not_found(format!(
            "No such container: {name}"
        ))));
    }
    b.container_remove_link(&name).await?;
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

/// `h` and `w` of a resize, read as dockerd reads them (`strconv.Atoi`, its error text).
pub fn size_params(q: &Query) -> Result<(u16, u16), Error> {
    let atoi = |key: &str| -> Result<i64, Error> {
        match q.get(key) {
            None | Some("") => Ok(0),
            Some(v) => v.parse::<i64>().map_err(|e| {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        "value out of range"
                    }
                    _ => "invalid syntax",
                };
                Error(ApiError::invalid(format!(
                    "strconv.Atoi: parsing {v:?}: {why}"
                )))
            }),
        }
    };
    let h = atoi("h")?;
    let w = atoi("w")?;
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
    be: Behaviour,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HandlerResult<Response> {
    let q = Query::parse(q.as_deref());
    // dockerd reads `tail` with strconv.Atoi and shows everything when that fails ("all",
    // "abc") or gives a negative count; it never refuses the value.
    let tail = q
        .get("tail")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|n| usize::try_from(n).ok());
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
        [(header::CONTENT_TYPE, content_type(tty, be))],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn attach(
    State(b): State<AppState>,
    be: Behaviour,
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
    Ok(hijack(up, wants, body, session, be))
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
