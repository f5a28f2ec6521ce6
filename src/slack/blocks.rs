//! (scaffold until the renderers land)
use crate::domain::{AccessRequest, CardKind, Notice};
use slack_morphism::prelude::SlackMessageContent;
pub fn card(_r: &AccessRequest, _k: CardKind, _to: &str) -> SlackMessageContent {
    unimplemented!()
}
pub fn notice(_r: &AccessRequest, _n: &Notice) -> SlackMessageContent {
    unimplemented!()
}
pub fn assignee_reminder(_r: &AccessRequest) -> SlackMessageContent {
    unimplemented!()
}
