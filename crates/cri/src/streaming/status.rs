//! The `metav1.Status` objects the remotecommand error stream (protocol v4 and later) carries
//! when an exec or attach ends: success, a non-zero exit code (which `kubectl exec` turns into
//! its own exit code), or a failure.

use serde_json::json;

use crate::error::CriError;

pub fn success() -> Vec<u8> {
    json!({"metadata": {}, "status": "Success"})
        .to_string()
        .into_bytes()
}

pub fn exit_code(cmd: &[String], code: i32) -> Vec<u8> {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            cmd.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
    .to_string()
    .into_bytes()
}

pub fn failure(e: &CriError) -> Vec<u8> {
    let msg = e.to_string();
    json!({
        "metadata": {},
        "status": "Failure",
        "message": msg,
        "reason": "InternalError",
        "details": {"causes": [{"message": msg}]},
        "code": 500,
    })
    .to_string()
    .into_bytes()
}

/// The exit code a client reads back from a status (what kubectl does), `None` for success.
pub fn parse_exit(status: &[u8]) -> Result<Option<i32>, String> {
    let v: serde_json::Value = serde_json::from_slice(status).map_err(|e| e.to_string())?;
    if v["status"] == "Success" {
        return Ok(None);
    }
    if v["reason"] == "NonZeroExitCode" {
        if let Some(causes) = v["details"]["causes"].as_array() {
            for c in causes {
                if c["reason"] == "ExitCode" {
                    return c["message"]
                        .as_str()
                        .and_then(|m| m.parse().ok())
                        .map(Some)
                        .ok_or_else(|| "bad exit code".to_string());
                }
            }
        }
    }
    Err(v["message"]
        .as_str()
        .unwrap_or("unknown failure")
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back() {
        assert_eq!(parse_exit(&success()), Ok(None));
        assert_eq!(
            parse_exit(&exit_code(&["sh".into(), "-c".into()], 3)),
            Ok(Some(3))
        );
        let f = failure(&CriError::not_found("container", "c"));
        assert_eq!(parse_exit(&f), Err("container \"c\" not found".into()));
    }
}
