//! (scaffold until the renderers land)
use crate::domain::{AccessRequest, App};
use slack_morphism::prelude::SlackView;
pub fn edit_modal(_r: &AccessRequest, _a: &App) -> SlackView {
    unimplemented!()
}
pub fn feedback_modal(_r: &AccessRequest) -> SlackView {
    unimplemented!()
}
