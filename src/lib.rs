//! accessbot: the last mile of software access requests, in Slack.

pub mod app;
pub mod clock;
pub mod config;
#[cfg(test)]
mod conformance_tests;
mod directory;
pub mod domain;
mod foreground;
mod http;
mod metrics;
mod nul;
mod scheduler;
mod service;
pub mod slack;
mod socket_mode;
pub mod store;
mod supervisor;
mod time_format;
mod worker;

pub use app::App;
pub use config::Config;
