pub mod container;
pub mod image;
pub mod network;
pub mod run;
pub mod system;
