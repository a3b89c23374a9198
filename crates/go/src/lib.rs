//! The text conventions of Go and of `github.com/docker/go-units` that dockerd and the docker CLI
//! print and parse, in one place for the daemon, the CLI and the builder: `time.ParseDuration`
//! and `Duration.String`, `strconv.Quote`, `%g`, human sizes and durations, `RAMInBytes`.
//!
//! Each function follows the Go source's behaviour, error texts included, because clients and
//! tests compare the text.

mod duration;
mod quote;
mod units;

pub use duration::{format_duration, parse_duration};
pub use quote::quote;
pub use units::{
    bytes_size, format_g, from_human_size, human_duration, human_size, human_size_prec,
    ram_in_bytes,
};
