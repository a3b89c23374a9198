pub mod build;
pub mod container;
pub mod image;
pub mod network;
pub mod prune;
pub mod run;
pub mod system;
pub mod volume;
