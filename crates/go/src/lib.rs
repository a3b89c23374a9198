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

/// Go's `int64(f)` for a float: truncated toward zero. Go leaves out-of-range values undefined;
/// here they saturate and NaN is 0, which is what Rust's float-to-int `as` does — so this is
/// the one place such casts are written, on purpose.
#[allow(clippy::cast_possible_truncation)]
pub fn trunc_i64(f: f64) -> i64 {
    f as i64
}

/// Go's `uint64(f)` for a non-negative float (negative values give 0, out of range saturates).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn trunc_u64(f: f64) -> u64 {
    f as u64
}

/// `floor(log10(|v|))` as an `i32` exponent (a finite non-zero `f64` has one in -324..=308).
#[allow(clippy::cast_possible_truncation)]
pub fn exponent10(v: f64) -> i32 {
    v.abs().log10().floor() as i32
}
pub use quote::quote;
pub use units::{
    bytes_size, format_g, from_human_size, human_duration, human_size, human_size_prec,
    ram_in_bytes,
};
