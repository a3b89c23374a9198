//! Version-dependent behaviour: [`table`] says what changed when; [`shape`] gives responses the
//! fields of the request's version; [`create`] adjusts a create request as dockerd's router does
//! for older clients. Handlers get a [`Behaviour`] as an extractor and hand the services typed
//! options decided from it.

pub mod create;
pub mod shape;
pub mod table;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub use table::{row, Behaviour, Change, Row};

use crate::version::ApiVersion;

impl<S: Send + Sync> FromRequestParts<S> for Behaviour {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let v = ApiVersion::from_request_parts(parts, state).await?;
        Ok(Behaviour::new(v))
    }
}
