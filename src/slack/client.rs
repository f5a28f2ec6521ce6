//! The Slack Web API in the bot's own words, on slack-morphism's client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::metrics::{CallOutcome, Metrics};

/// The metadata event type of every message the bot posts.
pub const DELIVERY_EVENT: &str = "accessbot_delivery";
/// The metadata field naming the outbox delivery that posted a message.
const DELIVERY_KEY: &str = "delivery_id";

/// No Slack call may hang a worker for longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// Why a call did not succeed, sorted by what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// HTTP 429: wait `retry_after` (Slack's `Retry-After`), then try again.
    #[error("rate limited by Slack")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, a network error or a timeout: try again later. For posts, the message may
    /// or may not have been created.
    #[error("Slack could not be reached: {0}")]
    Transient(String),
    /// Slack said no (`ok: false`); trying again will not help.
    #[error("{0}")]
    Permanent(String),
}

/// Where a posted message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    /// Posted by an earlier attempt and found again, rather than posted just now.
    pub found: bool,
}

/// What `users.info` says about a person, in the bot's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub id: String,
    /// The profile's display name, else the real name, else the account name.
    pub display_name: String,
    pub real_name: String,
    /// The account is deactivated.
    pub deleted: bool,
    pub tz: Option<String>,
    /// Present with the `users:read.email` scope.
    pub email: Option<String>,
}

impl UserInfo {
    fn from_slack(user: SlackUser) -> UserInfo {
        let profile = user.profile.as_ref();
        let given = |name: Option<&String>| name.filter(|name| !name.trim().is_empty()).cloned();
        let real_name = given(profile.and_then(|p| p.real_name.as_ref()))
            .or_else(|| given(user.real_name.as_ref()));
        let display_name = given(profile.and_then(|p| p.display_name.as_ref()))
            .or_else(|| real_name.clone())
            .or_else(|| given(user.name.as_ref()))
            .unwrap_or_else(|| user.id.to_string());
        UserInfo {
            id: user.id.to_string(),
            display_name,
            real_name: real_name.unwrap_or_default(),
            deleted: user.deleted.unwrap_or(false),
            tz: user.tz.filter(|tz| !tz.is_empty()),
            email: profile
                .and_then(|p| p.email.as_ref())
                .map(|email| email.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    metrics: Arc<Metrics>,
}

impl SlackApi {
    /// A client for the Web API at `api_url` (https, or plain http for a local fake).
    pub fn new(api_url: &str, bot_token: &str, metrics: Arc<Metrics>) -> SlackApi {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let connector =
            SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
        SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(bot_token.to_string().into()),
            metrics,
        }
    }

    async fn call<T, F>(&self, method: &'static str, call: F) -> Result<T, CallError>
    where
        F: std::future::Future<Output = ClientResult<T>>,
    {
        let started = Instant::now();
        let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(classify),
            Err(_) => Err(CallError::Transient("timed out".into())),
        };
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(CallError::RateLimited { .. }) => CallOutcome::RateLimited,
            Err(CallError::Transient(_)) => CallOutcome::Transient,
            Err(CallError::Permanent(_)) => CallOutcome::Failed,
        };
        self.metrics.slack_call(method, outcome, started.elapsed());
        if let Err(err) = &result {
            tracing::warn!(method, error = %err, "Slack call did not succeed");
        }
        result
    }

    /// The same client with another token: Socket Mode's `apps.connections.open` wants the
    /// app-level token, not the bot's.
    pub fn with_token(&self, token: &str) -> SlackApi {
        SlackApi {
            client: self.client.clone(),
            token: SlackApiToken::new(token.to_string().into()),
            metrics: self.metrics.clone(),
        }
    }

    /// apps.connections.open (with an app-level token): the URL of a new Socket Mode
    /// connection, good once and for a short time.
    pub async fn open_socket_connection(&self) -> Result<String, CallError> {
        let session = self.client.open_session(&self.token);
        let response = self
            .call(
                "apps.connections.open",
                session.apps_connections_open(&SlackApiAppsConnectionOpenRequest::new()),
            )
            .await?;
        Ok(response.url.0.to_string())
    }

    /// users.info: who `user` is, and whether their account is deactivated.
    pub async fn user_info(&self, user: &str) -> Result<UserInfo, CallError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiUsersInfoRequest::new(user.into());
        let response = self
            .call("users.info", session.users_info(&request))
            .await?;
        Ok(UserInfo::from_slack(response.user))
    }

    /// chat.postMessage; `channel` may be a user id, which posts to the bot's DM with them.
    /// The message carries `delivery_id` in its metadata, so that a post whose outcome was
    /// unknown can be found again ([`SlackApi::find_posted`]) instead of being sent twice.
    pub async fn post_message(
        &self,
        channel: &str,
        content: SlackMessageContent,
        thread_ts: Option<&str>,
        delivery_id: i64,
    ) -> Result<Posted, CallError> {
        let session = self.client.open_session(&self.token);
        let metadata = SlackMessageMetadata {
            event_type: DELIVERY_EVENT.to_string(),
            event_payload: Some(
                [(DELIVERY_KEY.to_string(), delivery_id.to_string())]
                    .into_iter()
                    .collect(),
            ),
        };
        let mut request =
            SlackApiChatPostMessageRequest::new(channel.into(), content.with_metadata(metadata));
        request.thread_ts = thread_ts.map(|ts| ts.into());
        let response = self
            .call("chat.postMessage", session.chat_post_message(&request))
            .await?;
        Ok(Posted {
            channel: response.channel.to_string(),
            ts: response.ts.to_string(),
            found: false,
        })
    }

    /// The message delivery `delivery_id` posted to `channel` (or in the thread `thread_ts`
    /// there), if an earlier attempt whose answer was lost did post it.
    pub async fn find_posted(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        delivery_id: i64,
        text: &str,
    ) -> Result<Option<Posted>, CallError> {
        let session = self.client.open_session(&self.token);
        let channel = if channel.starts_with(['U', 'W']) {
            // A DM was posted to a user id; its history lives in the DM channel.
            let open = SlackApiConversationsOpenRequest::new().with_users(vec![channel.into()]);
            let opened = self
                .call("conversations.open", session.conversations_open(&open))
                .await?;
            opened.channel.id.to_string()
        } else {
            channel.to_string()
        };
        let messages = match thread_ts {
            // Replies carry no metadata through this client; a bot reply with the same
            // text in the same thread is the earlier attempt.
            Some(thread_ts) => {
                let request = SlackApiConversationsRepliesRequest::new(
                    channel.clone().into(),
                    thread_ts.into(),
                )
                .with_limit(200);
                let replies = self
                    .call(
                        "conversations.replies",
                        session.conversations_replies(&request),
                    )
                    .await?;
                return Ok(replies
                    .messages
                    .into_iter()
                    .find(|m| m.sender.bot_id.is_some() && m.content.text.as_deref() == Some(text))
                    .map(|m| Posted {
                        channel: channel.clone(),
                        ts: m.origin.ts.to_string(),
                        found: true,
                    }));
            }
            None => {
                let request = SlackApiConversationsHistoryRequest::new()
                    .with_channel(channel.clone().into())
                    .with_limit(200)
                    .with_include_all_metadata(true);
                self.call(
                    "conversations.history",
                    session.conversations_history(&request),
                )
                .await?
                .messages
            }
        };
        let wanted = delivery_id.to_string();
        Ok(messages
            .into_iter()
            .find(|message| {
                message.content.metadata.as_ref().is_some_and(|metadata| {
                    metadata.event_type == DELIVERY_EVENT
                        && metadata
                            .event_payload
                            .as_ref()
                            .and_then(|payload| payload.get(DELIVERY_KEY))
                            == Some(&wanted)
                })
            })
            .map(|message| Posted {
                channel: channel.clone(),
                ts: message.origin.ts.to_string(),
                found: true,
            }))
    }

    /// chat.update of a message the bot posted.
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> Result<(), CallError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiChatUpdateRequest::new(channel.into(), content, ts.into());
        self.call("chat.update", session.chat_update(&request))
            .await
            .map(|_| ())
    }

    /// chat.delete of a message the bot posted.
    pub async fn delete_message(&self, channel: &str, ts: &str) -> Result<(), CallError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiChatDeleteRequest::new(channel.into(), ts.into());
        self.call("chat.delete", session.chat_delete(&request))
            .await
            .map(|_| ())
    }

    /// chat.postEphemeral: a message only `user` sees (in the thread `thread_ts`, if set).
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<(), CallError> {
        let session = self.client.open_session(&self.token);
        let mut request = SlackApiChatPostEphemeralRequest::new(
            channel.into(),
            user.into(),
            SlackMessageContent::new().with_text(text.to_string()),
        );
        request.thread_ts = thread_ts.map(|ts| ts.into());
        self.call("chat.postEphemeral", session.chat_post_ephemeral(&request))
            .await
            .map(|_| ())
    }

    /// views.open with a fresh trigger id.
    pub async fn open_view(&self, trigger_id: &str, view: SlackView) -> Result<(), CallError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiViewsOpenRequest::new(trigger_id.into(), view);
        self.call("views.open", session.views_open(&request))
            .await
            .map(|_| ())
    }

    /// views.update of an open modal; `hash` guards against overwriting a newer version.
    pub async fn update_view(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: SlackView,
    ) -> Result<(), CallError> {
        let session = self.client.open_session(&self.token);
        let mut request = SlackApiViewsUpdateRequest::new(view);
        request.view_id = Some(view_id.into());
        request.hash = hash.map(str::to_string);
        self.call("views.update", session.views_update(&request))
            .await
            .map(|_| ())
    }

    /// views.publish of a user's App Home.
    pub async fn publish_home(&self, user: &str, view: SlackView) -> Result<(), CallError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiViewsPublishRequest::new(user.into(), view);
        self.call("views.publish", session.views_publish(&request))
            .await
            .map(|_| ())
    }
}

/// Slack's errors for a DM to a person who is no longer there: the account is deactivated
/// (`user_disabled`) or unknown (`user_not_found`). (`account_inactive` is about the bot's
/// own token or workspace, not the recipient.)
pub const RECIPIENT_GONE: [&str; 2] = ["user_disabled", "user_not_found"];

/// Slack error codes that mean "try again later" although Slack answered.
const TRANSIENT_CODES: [&str; 4] = [
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

fn classify(err: SlackClientError) -> CallError {
    match err {
        SlackClientError::RateLimitError(limited) => CallError::RateLimited {
            retry_after: limited.retry_after,
        },
        SlackClientError::ApiError(api)
            if api.code == "ratelimited" || api.code == "rate_limited" =>
        {
            CallError::RateLimited { retry_after: None }
        }
        SlackClientError::ApiError(api) if TRANSIENT_CODES.contains(&api.code.as_str()) => {
            CallError::Transient(api.code)
        }
        SlackClientError::ApiError(api) => CallError::Permanent(api.code),
        SlackClientError::HttpError(http) if http.status_code.is_server_error() => {
            CallError::Transient(format!("HTTP {}", http.status_code))
        }
        SlackClientError::HttpError(http) => {
            CallError::Permanent(format!("HTTP {}", http.status_code))
        }
        other => CallError::Transient(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(json: serde_json::Value) -> UserInfo {
        UserInfo::from_slack(serde_json::from_value(json).expect("a users.info user"))
    }

    #[test]
    fn the_display_name_is_the_profiles_else_the_real_name_else_the_account_name() {
        let full = user(serde_json::json!({
            "id": "U1",
            "name": "ada.l",
            "real_name": "Ada Lovelace",
            "deleted": false,
            "tz": "Europe/London",
            "profile": {
                "display_name": "ada",
                "real_name": "Ada Lovelace",
                "email": "ada@example.com"
            }
        }));
        assert_eq!(
            full,
            UserInfo {
                id: "U1".into(),
                display_name: "ada".into(),
                real_name: "Ada Lovelace".into(),
                deleted: false,
                tz: Some("Europe/London".into()),
                email: Some("ada@example.com".into()),
            }
        );
        let no_display_name = user(serde_json::json!({
            "id": "U2", "name": "grace.h", "deleted": true,
            "profile": {"display_name": "", "real_name": "Grace Hopper"}
        }));
        assert_eq!(no_display_name.display_name, "Grace Hopper");
        assert!(no_display_name.deleted);
        assert_eq!(no_display_name.email, None);
        let account_only = user(serde_json::json!({"id": "U3", "name": "linus"}));
        assert_eq!(account_only.display_name, "linus");
        assert_eq!(account_only.real_name, "");
        assert!(!account_only.deleted);
        let nothing = user(serde_json::json!({"id": "W4"}));
        assert_eq!(nothing.display_name, "W4");
    }
}
