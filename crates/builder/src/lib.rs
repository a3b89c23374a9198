//! # berth-builder
//!
//! Builds images from Dockerfiles: our own Dockerfile [`parser`], the typed
//! [`instruction`]s and BuildKit [`flags`] (`RUN --mount`, `--network`, `--security`, the
//! `# syntax=` frontends served here), variable substitution ([`shell`]), `.dockerignore`
//! matching ([`ignore`]), the file operations of `COPY`/`ADD` ([`copy`]) and the build
//! itself ([`engine`]) over a small [`engine::Backend`] trait that the daemon implements
//! with real containers and its image store.
//!
//! The `engine` feature (on by default) carries [`copy`] and [`engine`]; without it the
//! crate is just the parsers, for the fuzz package.

#[cfg(feature = "engine")]
pub mod copy;
#[cfg(feature = "engine")]
pub mod engine;
pub mod flags;
pub mod ignore;
pub mod instruction;
pub mod parser;
pub mod shell;

#[cfg(feature = "engine")]
pub use engine::{
    build, Backend, BackendError, BuildError, CacheMountLease, CacheMountRequest, Fetched,
    ImageState, NamedContext, Options, Output, RunConfig, RunMount, RunMountKind,
};
pub use ignore::Ignore;
pub use parser::{parse, Dockerfile, Instruction, ParseError};

#[cfg(test)]
mod parser_tests;
