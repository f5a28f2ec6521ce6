//! Everything Slack-shaped: signatures, payloads, rendering and the Web API client.

pub mod blocks;
pub mod client;
pub mod events;
pub mod ids;
pub mod limits;
pub mod mrkdwn;
pub mod payload;
pub mod signature;
#[cfg(test)]
mod snapshots;
pub mod views;
