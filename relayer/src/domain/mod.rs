pub mod json;
pub mod offer;
pub mod signature;
pub mod tracking;
