//! berth image
pub mod archive;
pub mod config;
pub mod digest;
pub mod error;
pub mod overlay;
pub mod reference;
pub mod store;
pub mod unpack;
pub use error::{Error, Result};
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod testutil;
#[cfg(test)]
mod archive_tests;
