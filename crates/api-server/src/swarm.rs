//! The swarm endpoints (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`,
//! `PUT /volumes/{name}`) answered as dockerd answers them on a node that is in no swarm: berth
//! never is. Each route validates what dockerd's router validates first (the JSON body, the
//! `version` query parameter, log streams), then gives dockerd's 503. Swarm itself is not
//! implemented; an init or join that dockerd would carry out gets 501.

use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;
use berth_api_types::{ApiError, ErrorKind};
use bytes::Bytes;
use serde_json::Value;

use crate::compat::Behaviour;
use crate::error::{Error, HandlerResult};
use crate::query::Query;
use crate::AppState;

/// dockerd's answer to `POST /swarm/leave` off a swarm.
pub const NOT_IN_SWARM: &str = "This node is not part of a swarm";
/// dockerd's answer to the manager endpoints off a swarm.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

fn unavailable(message: &str) -> Error {
    Error(ApiError::new(ErrorKind::Unavailable, message))
}

fn no_manager<T>() -> HandlerResult<T> {
    Err(unavailable(NOT_A_MANAGER))
}

/// The swarm routes, to merge into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/swarm", get(inspect))
        .route("/swarm/init", post(init))
        .route("/swarm/join", post(join))
        .route("/swarm/leave", post(leave))
        .route("/swarm/update", post(update_swarm))
        .route("/swarm/unlockkey", get(manager_only))
        .route("/swarm/unlock", post(unlock))
        .route("/services", get(list))
        .route("/services/create", post(create))
        .route("/services/{id}", get(get_service).delete(manager_only))
        .route("/services/{id}/update", post(update_service))
        .route("/services/{id}/logs", get(logs))
        .route("/nodes", get(list))
        .route("/nodes/{id}", get(manager_only).delete(manager_only))
        .route("/nodes/{id}/update", post(update_node))
        .route("/tasks", get(list))
        .route("/tasks/{id}", get(manager_only))
        .route("/tasks/{id}/logs", get(logs))
        .route("/secrets", get(list))
        .route("/secrets/create", post(create_secret))
        .route("/secrets/{id}", get(manager_only).delete(manager_only))
        .route("/secrets/{id}/update", post(update_secret))
        .route("/configs", get(list))
        .route("/configs/create", post(create_config))
        .route("/configs/{id}", get(manager_only).delete(manager_only))
        .route("/configs/{id}/update", post(update_config))
}

/// dockerd's `httputils.ReadJSON`: the body must be JSON when there is one (an empty body is
/// no body), one document, an object for a struct.
fn read_json(
    headers: &HeaderMap,
    body: &[u8],
) -> HandlerResult<Option<serde_json::Map<String, Value>>> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.is_empty() && body.is_empty() {
        return Ok(None);
    }
    if ctype.is_empty() {
        return Err(Error(ApiError::invalid(
            "malformed Content-Type header (): mime: no media type",
        )));
    }
    let media = ctype.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Error(ApiError::invalid(format!(
            "unsupported Content-Type header ({ctype}): must be 'application/json'"
        ))));
    }
    if body.is_empty() {
        return Ok(None);
    }
    let mut docs = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let doc = match docs.next() {
        None => {
            return Err(Error(ApiError::invalid(
                "invalid JSON: got EOF while reading request body",
            )))
        }
        Some(Err(e)) => return Err(Error(ApiError::invalid(format!("invalid JSON: {e}")))),
        Some(Ok(v)) => v,
    };
    if docs.next().is_some() {
        return Err(Error(ApiError::invalid("unexpected content after JSON")));
    }
    match doc {
        Value::Object(m) => Ok(Some(m)),
        Value::Null => Ok(None),
        other => Err(Error(ApiError::invalid(format!(
            "invalid JSON: json: cannot unmarshal {} into Go value of type struct",
            go_kind(&other)
        )))),
    }
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A string field of a decoded request, keys matched case-insensitively as Go does.
fn string_field(
    obj: Option<&serde_json::Map<String, Value>>,
    key: &str,
    owner: &str,
) -> HandlerResult<String> {
    let found = obj.and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    });
    match found {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Error(ApiError::invalid(format!(
            "invalid JSON: json: cannot unmarshal {} into Go struct field {owner}.{key} of type string",
            go_kind(other)
        )))),
    }
}

fn field<'a>(obj: Option<&'a serde_json::Map<String, Value>>, key: &str) -> Option<&'a Value> {
    obj.and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Go's `strconv.ParseUint(raw, 10, 64)` error text.
fn parse_uint(raw: &str) -> Result<u64, String> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {raw:?}: invalid syntax"
        ));
    }
    raw.parse::<u64>()
        .map_err(|_| format!("strconv.ParseUint: parsing {raw:?}: value out of range"))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// dockerd's `validateAddr` for an init or join address.
fn check_addr(what: &str, addr: &str) -> HandlerResult<()> {
    if addr.is_empty() {
        return Err(Error(ApiError::invalid(format!(
            "invalid {what} {addr:?}: invalid empty address"
        ))));
    }
    Ok(())
}

fn unsupported() -> Error {
    Error(ApiError::new(
        ErrorKind::NotImplemented,
        "swarm mode is not supported by berth",
    ))
}

async fn inspect() -> HandlerResult<()> {
    no_manager()
}

async fn manager_only() -> HandlerResult<()> {
    no_manager()
}

async fn leave() -> HandlerResult<()> {
    Err(unavailable(NOT_IN_SWARM))
}

async fn init(headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    let req = read_json(&headers, &body)?;
    let listen = string_field(req.as_ref(), "ListenAddr", "InitRequest")?;
    check_addr("ListenAddr", &listen)?;
    let spec = field(req.as_ref(), "Spec").and_then(Value::as_object);
    let name = string_field(spec, "Name", "Spec")?;
    if !name.is_empty() && name != "default" {
        return Err(Error(ApiError::invalid(
            r#"swarm spec must be named "default""#,
        )));
    }
    Err(unsupported())
}

async fn join(headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    let req = read_json(&headers, &body)?;
    let listen = string_field(req.as_ref(), "ListenAddr", "JoinRequest")?;
    check_addr("ListenAddr", &listen)?;
    let remotes: Vec<String> = field(req.as_ref(), "RemoteAddrs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    if remotes.is_empty() {
        return Err(Error(ApiError::invalid(
            "at least 1 RemoteAddr is required to join",
        )));
    }
    for r in &remotes {
        check_addr("remoteAddr", r)?;
    }
    Err(unsupported())
}

/// The `version` query parameter of an update, with the message of each object's router.
fn object_version(q: &Query, what: &str) -> HandlerResult<u64> {
    let raw = q.get("version").unwrap_or("");
    parse_uint(raw).map_err(|e| {
        Error(ApiError::invalid(match what {
            "secret" | "config" => format!("invalid {what} version"),
            _ => format!("invalid {what} version '{raw}': {e}"),
        }))
    })
}

async fn update_swarm(RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    let q = Query::parse(q.as_deref());
    object_version(&q, "swarm")?;
    for flag in [
        "rotateWorkerToken",
        "rotateManagerToken",
        "rotateManagerUnlockKey",
    ] {
        if let Some(v) = q.get(flag).filter(|v| !v.is_empty()) {
            if parse_go_bool(v).is_none() {
                return Err(Error(ApiError::invalid(format!(
                    "invalid value for {flag}: {v}"
                ))));
            }
        }
    }
    no_manager()
}

async fn unlock(headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    no_manager()
}

/// `GET /services|nodes|tasks|secrets|configs`: the filters and (services, API 1.41+) the
/// `status` flag are checked before the node's state.
async fn list(b: Behaviour, uri: axum::http::Uri, RawQuery(q): RawQuery) -> HandlerResult<()> {
    let q = Query::parse(q.as_deref());
    q.filters()?;
    if uri.path().ends_with("/services") && b.version >= crate::version::ApiVersion::new(1, 41) {
        if let Some(v) = q.get("status").filter(|v| !v.is_empty()) {
            if parse_go_bool(v).is_none() {
                return Err(Error(ApiError::invalid(format!(
                    "invalid value for status: {v}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                ))));
            }
        }
    }
    no_manager()
}

async fn get_service(Path(_id): Path<String>, RawQuery(q): RawQuery) -> HandlerResult<()> {
    let q = Query::parse(q.as_deref());
    if let Some(v) = q.get("insertDefaults").filter(|v| !v.is_empty()) {
        if parse_go_bool(v).is_none() {
            return Err(Error(ApiError::invalid(format!(
                "invalid value for insertDefaults: {v}: strconv.ParseBool: parsing {v:?}: invalid syntax"
            ))));
        }
    }
    no_manager()
}

async fn create(headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    no_manager()
}

async fn update_service(
    Path(_id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    object_version(&Query::parse(q.as_deref()), "service")?;
    no_manager()
}

async fn update_node(
    Path(_id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    object_version(&Query::parse(q.as_deref()), "node")?;
    no_manager()
}

/// Service and task logs: dockerd checks the streams first (with a plain error, so a 500).
async fn logs(Path(_id): Path<String>, RawQuery(q): RawQuery) -> HandlerResult<()> {
    let q = Query::parse(q.as_deref());
    // dockerd's `BoolValue`: anything but "", "0", "no", "false", "none" is true.
    let on = |k: &str| {
        let v = q.get(k).unwrap_or("").trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
    };
    if !on("stdout") && !on("stderr") {
        return Err(Error(ApiError::internal(
            "Bad parameters: you must choose at least one stream",
        )));
    }
    no_manager()
}

/// Secrets and configs created with `Templating` need API 1.37.
fn templating(
    req: Option<&serde_json::Map<String, Value>>,
    what: &str,
    b: Behaviour,
) -> HandlerResult<()> {
    let templated = field(req, "Templating").is_some_and(|t| !t.is_null());
    if templated && b.version < crate::version::ApiVersion::new(1, 37) {
        return Err(Error(ApiError::invalid(format!(
            "{what} templating is not supported on the specified API version: {}",
            b.version
        ))));
    }
    Ok(())
}

async fn create_secret(b: Behaviour, headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    let req = read_json(&headers, &body)?;
    templating(req.as_ref(), "secret", b)?;
    no_manager()
}

async fn create_config(b: Behaviour, headers: HeaderMap, body: Bytes) -> HandlerResult<()> {
    let req = read_json(&headers, &body)?;
    templating(req.as_ref(), "config", b)?;
    no_manager()
}

async fn update_secret(
    Path(_id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    object_version(&Query::parse(q.as_deref()), "secret")?;
    no_manager()
}

async fn update_config(
    Path(_id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HandlerResult<()> {
    read_json(&headers, &body)?;
    object_version(&Query::parse(q.as_deref()), "config")?;
    no_manager()
}

/// `PUT /volumes/{name}` updates cluster volumes only.
pub async fn volume_update(Path(_name): Path<String>) -> HandlerResult<()> {
    Err(unavailable(
        "volume update only valid for cluster volumes, but swarm is unavailable",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h
    }

    #[test]
    fn bodies_as_dockerd_reads_them() {
        assert!(read_json(&HeaderMap::new(), b"").unwrap().is_none());
        assert!(read_json(&json_headers(), b"").unwrap().is_none());
        assert_eq!(
            read_json(&json_headers(), b"  ").unwrap_err().0.message,
            "invalid JSON: got EOF while reading request body"
        );
        assert_eq!(
            read_json(&json_headers(), b"{} {}").unwrap_err().0.message,
            "unexpected content after JSON"
        );
        let mut text = HeaderMap::new();
        text.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            read_json(&text, b"{}").unwrap_err().0.message,
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        let m = read_json(&json_headers(), br#"{"listenaddr": "0.0.0.0:2377"}"#).unwrap();
        assert_eq!(
            string_field(m.as_ref(), "ListenAddr", "InitRequest").unwrap(),
            "0.0.0.0:2377"
        );
    }

    #[test]
    fn go_number_and_bool_parsing() {
        assert_eq!(
            parse_uint("").unwrap_err(),
            r#"strconv.ParseUint: parsing "": invalid syntax"#
        );
        assert_eq!(parse_uint("12").unwrap(), 12);
        assert!(parse_uint("99999999999999999999")
            .unwrap_err()
            .ends_with("value out of range"));
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }
}
