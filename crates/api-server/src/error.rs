//! Error kinds → HTTP status, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api_types::{ApiError, ErrorKind, ErrorResponse};

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Wraps [`ApiError`] so handlers can `?` it into a response.
#[derive(Debug)]
pub struct Error(pub ApiError);

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error(e)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind);
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        (
            status,
            axum::Json(ErrorResponse {
                message: self.0.message,
            }),
        )
            .into_response()
    }
}

pub type HandlerResult<T> = Result<T, Error>;

/// dockerd's answer to a path it has no route for, or a method a route does not take
/// (its router sends both to the same handler): 404 "page not found".
pub async fn not_found_route() -> Error {
    Error(ApiError::not_found("page not found"))
}

/// Parses a JSON body by Go's encoding/json rules ([`berth_api_types::gojson`]), as dockerd
/// does, with a 400 that says what was wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    empty_message: &str,
) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error(ApiError::invalid(empty_message)));
    }
    berth_api_types::gojson::from_slice(body)
        .map_err(|e| Error(ApiError::invalid(format!("invalid JSON: {e}"))))
}
