pub mod approve;
pub mod cancel;
pub mod create;
pub mod deposit;
pub mod dispute;
mod payout;
pub mod refund;
pub mod release;
pub mod revoke;

pub use approve::*;
pub use cancel::*;
pub use create::*;
pub use deposit::*;
pub use dispute::*;
pub use refund::*;
pub use release::*;
pub use revoke::*;
