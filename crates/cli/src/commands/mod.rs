pub mod container;
pub mod image;
pub mod run;
pub mod system;
pub mod volume;
