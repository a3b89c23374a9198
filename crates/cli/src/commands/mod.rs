pub mod container;
pub mod image;
pub mod network;
pub mod prune;
pub mod registry;
pub mod run;
pub mod system;
pub mod volume;
