//! How the daemon's module errors become API errors. Each module has its own `thiserror` enum
//! whose variants carry the context (path, id, source) and whose `kind()` says which API error
//! class it is; the conversion into [`ApiError`] happens once, here, when a service returns.

use berth_api_types::{ApiError, ErrorKind};

/// A module error that knows its API class.
pub(crate) trait Classified: std::error::Error {
    /// The API error class (and so the HTTP status) this failure is reported as.
    fn kind(&self) -> ErrorKind;
}

/// The API error for a classified module error: its kind and its message, unchanged.
pub(crate) fn api(e: &(impl Classified + ?Sized)) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

/// `impl From<E> for ApiError` through [`Classified`], so `?` converts at the service edge.
macro_rules! into_api_error {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for berth_api_types::ApiError {
            fn from(e: $t) -> Self {
                $crate::errors::api(&e)
            }
        })*
    };
}
pub(crate) use into_api_error;
