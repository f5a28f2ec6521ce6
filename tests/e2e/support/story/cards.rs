//! Cards, DMs, ephemerals and modals as the fake Slack holds them, and the waits for them
//! (never sleeps: each wait wakes when the fake records a call).

use serde_json::Value;

use super::PATIENCE;
use crate::support::fake_slack::{FakeSlack, DEFAULT_WAIT};
use crate::support::signer::ButtonClick;

/// A card the bot posted: where it is, and what it showed when it was found.
#[derive(Debug, Clone)]
pub struct Card {
    pub channel: String,
    pub ts: String,
    pub message: Value,
}

impl Card {
    /// The card as the fake holds it now (after updates).
    pub fn reload(&self, slack: &FakeSlack) -> Card {
        let message = slack
            .message(&self.channel, &self.ts)
            .unwrap_or_else(|| panic!("card {} {} vanished", self.channel, self.ts));
        Card {
            message,
            ..self.clone()
        }
    }

    pub fn text(&self) -> String {
        all_text(&self.message)
    }

    /// (label, action_id, style) of its buttons.
    pub fn buttons(&self) -> Vec<(String, String, String)> {
        buttons(&self.message)
    }

    pub fn has_actions(&self) -> bool {
        has_actions(&self.message)
    }

    /// The message as the fake holds it now.
    pub fn now(&self, slack: &FakeSlack) -> Value {
        slack
            .message(&self.channel, &self.ts)
            .unwrap_or_else(|| panic!("no message {} {}", self.channel, self.ts))
    }

    /// The texts of the replies in its thread, oldest first.
    pub fn replies(&self, slack: &FakeSlack) -> Vec<String> {
        slack
            .thread_replies(&self.channel, &self.ts)
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Whether the message as the fake holds it now has any actions block left.
    pub fn has_buttons(&self, slack: &FakeSlack) -> bool {
        has_actions(&self.now(slack))
    }

    /// The whole message as the fake holds it now (fallback and blocks), as one string.
    pub fn text_now(&self, slack: &FakeSlack) -> String {
        self.now(slack).to_string()
    }
}

/// Whether a message is a request card (cards and receipts open with a header block).
pub fn is_card(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .and_then(|blocks| blocks.first())
        .is_some_and(|first| first["type"] == "header")
}

/// The cards (top-level, with a header) in the conversation of `recipient` (a user id
/// means the bot's DM with them), oldest first.
pub fn cards_in(slack: &FakeSlack, recipient: &str) -> Vec<Card> {
    let channel = conversation_of(slack, recipient);
    slack
        .top_level_messages_in(recipient)
        .into_iter()
        .filter(is_card)
        .map(|message| Card {
            channel: channel.clone(),
            ts: message["ts"].as_str().unwrap_or_default().to_string(),
            message,
        })
        .collect()
}

/// Where the bot's messages to `recipient` land.
pub fn conversation_of(slack: &FakeSlack, recipient: &str) -> String {
    if recipient.starts_with('U') || recipient.starts_with('W') {
        slack.dm_channel_of(recipient)
    } else {
        recipient.to_string()
    }
}

/// Waits for the (last) card posted to `recipient`.
pub async fn card_of(slack: &FakeSlack, recipient: &str) -> Card {
    wait_for_card(slack, recipient, |_| true).await
}

/// Waits for the (last) card posted to `recipient` that has the button `action_id`.
pub async fn card_with_button(slack: &FakeSlack, recipient: &str, action_id: &str) -> Card {
    wait_for_card(slack, recipient, |card| {
        card.buttons().iter().any(|(_, id, _)| id == action_id)
    })
    .await
}

/// Waits for the last card posted to `recipient` that satisfies `condition`.
pub async fn wait_for_card<F>(slack: &FakeSlack, recipient: &str, condition: F) -> Card
where
    F: Fn(&Card) -> bool,
{
    let found = || cards_in(slack, recipient).into_iter().rfind(&condition);
    if let Err(timeout) = slack.wait_for(|_| found().is_some(), PATIENCE).await {
        panic!("no matching card for {recipient}: {timeout}");
    }
    found().expect("condition held")
}

/// Waits until the card at (`channel`, `ts`) satisfies `condition`; returns it then.
pub async fn wait_card_until<F>(slack: &FakeSlack, card: &Card, what: &str, condition: F) -> Card
where
    F: Fn(&Card) -> bool,
{
    if let Err(timeout) = slack
        .wait_for(|_| condition(&card.reload(slack)), PATIENCE)
        .await
    {
        panic!(
            "the card {} {} never got to {what}; it is {}\n{timeout}",
            card.channel,
            card.ts,
            card.reload(slack).message
        );
    }
    card.reload(slack)
}

/// Waits until the card has no actions block (it was decided), returns it then.
pub async fn wait_no_actions(slack: &FakeSlack, card: &Card) -> Card {
    wait_card_until(slack, card, "have no buttons", |c| !c.has_actions()).await
}

/// Waits for a DM to `user` (any message, cards included) whose text contains `needle`
/// (case-insensitively).
pub async fn dm_containing(slack: &FakeSlack, user: &str, needle: &str) -> Value {
    let needle = needle.to_lowercase();
    let found = || {
        slack
            .dms_to(user)
            .into_iter()
            .find(|m| all_text(m).to_lowercase().contains(&needle))
    };
    if let Err(timeout) = slack.wait_for(|_| found().is_some(), PATIENCE).await {
        panic!(
            "no DM to {user} containing {needle:?}; DMs: {:#?}\n{timeout}",
            slack.dms_to(user)
        );
    }
    found().expect("condition held")
}

/// Waits for an ephemeral message to `user`; returns the newest.
pub async fn ephemeral_for(slack: &FakeSlack, user: &str, count: usize) -> Value {
    if let Err(timeout) = slack
        .wait_for(|_| slack.ephemerals_for(user).len() >= count, PATIENCE)
        .await
    {
        panic!("no ephemeral message #{count} for {user}: {timeout}");
    }
    slack
        .ephemerals_for(user)
        .pop()
        .expect("an ephemeral message")
}

/// Waits for the `count`-th `views.open` call answered ok; returns the modal as the fake holds it.
pub async fn opened_modal(slack: &FakeSlack, count: usize) -> Value {
    let calls = slack
        .wait_for_ok_calls("views.open", count)
        .await
        .unwrap_or_else(|timeout| panic!("no views.open #{count}: {timeout}"));
    let id = calls[count - 1].response["view"]["id"]
        .as_str()
        .expect("views.open answers the view's id")
        .to_string();
    slack.view(&id).expect("the fake keeps the view")
}

/// Every string under a `text` key of a message or view, and its top-level text, joined.
pub fn all_text(value: &Value) -> String {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    match inner {
                        Value::String(text) if key == "text" => out.push(text.clone()),
                        _ => collect(inner, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(value, &mut out);
    out.join("\n")
}

/// (label, action_id, style) of each button of a message's actions blocks.
pub fn buttons(message: &Value) -> Vec<(String, String, String)> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
        .map(|element| {
            (
                element["text"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                element["action_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                element["style"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The button `action_id` of a message, as JSON.
pub fn button<'a>(message: &'a Value, action_id: &str) -> Option<&'a Value> {
    message["blocks"]
        .as_array()?
        .iter()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().into_iter().flatten())
        .find(|element| element["action_id"] == action_id)
}

/// Whether a message still has an actions block.
pub fn has_actions(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "actions"))
}

/// The labels of a message's buttons.
pub fn labels(message: &Value) -> Vec<String> {
    buttons(message)
        .into_iter()
        .map(|(label, _, _)| label)
        .collect()
}

/// How many ok `chat.postMessage` calls went to `recipient`'s conversation as top-level cards.
pub fn cards_posted_to(slack: &FakeSlack, recipient: &str) -> usize {
    let channel = conversation_of(slack, recipient);
    slack
        .ok_calls_to("chat.postMessage")
        .iter()
        .filter(|call| {
            call.response["channel"] == channel.as_str()
                && call.arg("thread_ts").is_none()
                && is_card(&call.response["message"])
        })
        .count()
}

/// Whether `message` is a card (or receipt) of request `id`: one of its buttons `action_id`
/// carries the id.
pub fn has_button(message: &Value, action_id: &str, id: i64) -> bool {
    ButtonClick::find_in(message, action_id).is_some_and(|b| b.value == id.to_string())
}

/// The top-level messages of `channel` (a user id means the DM with them) carrying the
/// button `action_id` for request `id`.
pub fn cards_with_button(slack: &FakeSlack, channel: &str, action_id: &str, id: i64) -> Vec<Value> {
    slack
        .top_level_messages_in(channel)
        .into_iter()
        .filter(|m| has_button(m, action_id, id))
        .collect()
}

/// Waits until `check` holds on the fake's state; panics with `what` and the calls otherwise.
pub async fn wait_for_state<F>(slack: &FakeSlack, what: &str, check: F)
where
    F: Fn(&FakeSlack) -> bool,
{
    let probe = slack.clone();
    if let Err(timeout) = slack.wait_for(|_| check(&probe), DEFAULT_WAIT).await {
        panic!("waited for {what}: {timeout:?}");
    }
}

/// Waits for the (first) card with button `action_id` of request `id` in `channel` (a user
/// id means the DM with them).
pub async fn wait_card(slack: &FakeSlack, channel: &str, action_id: &str, id: i64) -> Card {
    let what = format!("a card of request {id} with {action_id} in {channel}");
    wait_for_state(slack, &what, |s| {
        !cards_with_button(s, channel, action_id, id).is_empty()
    })
    .await;
    let card = cards_with_button(slack, channel, action_id, id)
        .into_iter()
        .next()
        .expect("the card");
    Card {
        channel: conversation_of(slack, channel),
        ts: card["ts"].as_str().expect("ts").to_string(),
        message: card,
    }
}

/// Waits until the thread of `card` has a reply whose text equals `text`.
pub async fn wait_reply(slack: &FakeSlack, card: &Card, text: &str) {
    let what = format!("the reply {text:?} in the thread of {card:?}");
    wait_for_state(slack, &what, |s| card.replies(s).iter().any(|r| r == text)).await;
}

/// Waits until `user`'s DM holds a top-level message whose `text` contains `needle` (exactly;
/// [`dm_containing`] looks through every text of any message, ignoring case).
pub async fn wait_dm_containing(slack: &FakeSlack, user: &str, needle: &str) {
    let what = format!("a DM to {user} containing {needle:?}");
    wait_for_state(slack, &what, |s| dms_containing(s, user, needle) > 0).await;
}

/// How many top-level messages of `user`'s DM contain `needle` in their `text`.
pub fn dms_containing(slack: &FakeSlack, user: &str, needle: &str) -> usize {
    slack
        .top_level_messages_in(user)
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)))
        .count()
}
