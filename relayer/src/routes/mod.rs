pub mod audit;
pub mod blinks;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod offers;
pub mod webhooks;
