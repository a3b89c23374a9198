#![recursion_limit = "256"]
//! The `berth` command: docker's commands, flags, exit codes and output over the Engine API.

pub mod app;
pub mod args;
pub mod commands;
pub mod format;
pub mod opts;
pub mod parse;
pub mod progress;
pub mod template;
pub mod term;
pub mod util;
