pub mod escrow;

pub use escrow::*;
