//! accessbot: the last mile of software access requests, in Slack.

pub mod app;
pub mod clock;
pub mod config;
#[cfg(test)]
mod conformance_tests;
pub mod domain;
pub mod foreground;
pub mod http;
pub mod metrics;
pub mod scheduler;
pub mod service;
pub mod slack;
pub mod store;
pub mod time_format;
pub mod worker;

pub use app::App;
pub use config::Config;
