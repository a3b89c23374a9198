pub mod container;
pub mod image;
pub mod network;
pub mod prune;
pub mod resources;
pub mod run;
pub mod system;
pub mod volume;
