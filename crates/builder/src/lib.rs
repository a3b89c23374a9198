//! # berth-builder
//!
//! Builds images from Dockerfiles: our own Dockerfile [`parser`], variable substitution
//! ([`shell`]), `.dockerignore` matching ([`ignore`]), the file operations of `COPY`/`ADD`
//! ([`copy`]) and the build itself ([`engine`]) over a small [`engine::Backend`] trait that
//! the daemon implements with real containers and its image store.

pub mod copy;
pub mod engine;
pub mod ignore;
pub mod parser;
pub mod shell;

pub use engine::{build, Backend, BuildError, ImageState, Options, RunConfig};
pub use ignore::Ignore;
pub use parser::{parse, Dockerfile, Instruction, ParseError};

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod parser_tests;
