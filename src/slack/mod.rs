//! Everything Slack-shaped: signatures, payloads, rendering and the Web API client.

pub mod blocks;
pub(crate) mod client;
pub mod events;
pub(crate) mod ids;
pub(crate) mod limits;
pub mod mrkdwn;
pub mod payload;
pub mod signature;
#[cfg(test)]
mod snapshots;
pub(crate) mod views;
