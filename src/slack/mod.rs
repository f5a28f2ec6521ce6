//! Everything Slack-shaped: signatures, payloads, rendering and the Web API client.

pub mod blocks;
pub mod ids;
pub mod limits;
pub mod mrkdwn;
pub mod views;
