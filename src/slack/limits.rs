//! Block Kit limits the renderers stay within. Slack rejects a payload that breaks one
//! (`invalid_blocks`, `invalid_arguments`, `msg_too_long`), and slack-morphism checks none
//! of them, so every renderer truncates to these numbers.
//!
//! Sources: docs.slack.dev Block Kit reference (blocks, block elements, composition
//! objects, modal views), `@slack/types` and `slack_sdk` 3.48 as summarised in
//! `shared/reference/slack-platform.md` §4.

/// Blocks in one message ("up to 50 blocks in each message"; docs.slack.dev blocks reference).
pub const MESSAGE_BLOCKS: usize = 50;
/// Blocks in a modal or the App Home ("100 blocks in modals or Home tabs"; same page).
pub const VIEW_BLOCKS: usize = 100;
/// Section block `text` (section block reference; `@slack/types`).
pub const SECTION_TEXT: usize = 3000;
/// Fields of one section block (`@slack/types`: at most 10).
pub const SECTION_FIELDS: usize = 10;
/// One section field's text (`@slack/types` blocks.ts).
pub const SECTION_FIELD: usize = 2000;
/// Header block text, plain_text only (`@slack/types`).
pub const HEADER_TEXT: usize = 150;
/// Button label (`@slack/types` block-elements.ts; Slack shows about 30).
pub const BUTTON_TEXT: usize = 75;
/// Button `value` (`@slack/types` block-elements.ts).
pub const BUTTON_VALUE: usize = 2000;
/// Confirmation dialog title (`@slack/types` composition-objects.ts).
pub const CONFIRM_TITLE: usize = 100;
/// Confirmation dialog text (same).
pub const CONFIRM_TEXT: usize = 300;
/// Confirmation dialog confirm/deny button labels (same).
pub const CONFIRM_BUTTON: usize = 30;
/// Modal `title` (modal view reference: 24 characters).
pub const MODAL_TITLE: usize = 24;
/// Modal `submit` and `close` labels (modal view reference: 24 characters).
pub const MODAL_BUTTON: usize = 24;
/// A view's `private_metadata` (modal view reference: 3000 characters).
pub const PRIVATE_METADATA: usize = 3000;
/// Input block `label` and `hint` (`@slack/types`).
pub const INPUT_LABEL: usize = 2000;
/// Placeholder text of an input element (`@slack/types`).
pub const PLACEHOLDER: usize = 150;
/// Option object `text` (`@slack/types`, `slack_sdk`).
pub const OPTION_TEXT: usize = 75;
/// Option object `value` (docs.slack.dev option object and `slack_sdk`: 150; older docs 75).
pub const OPTION_VALUE: usize = 150;
/// Options of one static select (`@slack/types`, `slack_sdk`: at most 100).
pub const SELECT_OPTIONS: usize = 100;
/// Context block elements (`@slack/types`: at most 10).
pub const CONTEXT_ELEMENTS: usize = 10;
/// Text of one context block element (`@slack/types`).
pub const CONTEXT_TEXT: usize = 2000;
/// plain_text_input `initial_value` and `max_length` (plain-text input element reference).
pub const PLAIN_TEXT_INPUT: usize = 3000;
/// Message `text` fallback. chat.postMessage advises 4000 and chat.update answers
/// `msg_too_long` above 4000; we keep a margin.
pub const MESSAGE_TEXT: usize = 3000;
/// Cumulative text of all blocks of one message: undocumented, `msg_blocks_too_long` was
/// observed near 13,200 characters (slackapi/bolt-js#2509); we stay well below.
pub const MESSAGE_BLOCKS_TEXT: usize = 12_000;
