pub mod container;
pub mod image;
pub mod registry;
pub mod run;
pub mod system;
