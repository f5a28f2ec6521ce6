//! Configuration from the environment (and a `.env` file), exactly as SPEC §5 names it.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

/// The settings accessbot runs with. Secrets are redacted in `Debug`.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub slack: Option<SlackCredentials>,
    /// Base of the Web API, without a trailing slash.
    pub slack_api_url: String,
    pub api_token: Option<String>,
    /// Required as a bearer token by `/metrics` when set.
    pub metrics_token: Option<String>,
    pub addr: SocketAddr,
    pub public_url: Url,
    pub scheduler_interval: Duration,
    /// Assignees of a stage that waited this long get one reminder.
    pub remind_after: Duration,
}

#[derive(Clone)]
pub struct SlackCredentials {
    pub bot_token: String,
    pub signing_secret: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl Config {
    /// Reads the process environment, after loading `.env` from the working directory.
    pub fn from_env() -> Result<Config, ConfigError> {
        // A missing .env is normal; a present one only fills variables not already set.
        let _ = dotenvy::dotenv();
        Config::from_vars(&std::env::vars().collect())
    }

    /// Builds the configuration from a set of variables (the environment, or a test's).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://accessbot.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError {
                variable: "DATABASE_URL",
                message: "must start with sqlite:// or postgres://".into(),
            });
        }
        let slack = match (get("SLACK_BOT_TOKEN"), get("SLACK_SIGNING_SECRET")) {
            (Some(bot_token), Some(signing_secret)) => Some(SlackCredentials {
                bot_token,
                signing_secret,
            }),
            _ => None,
        };
        let slack_api_url = get("SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into());
        let parsed_api_url = parse_http_url("SLACK_API_URL", &slack_api_url)?;
        let public_url = parse_http_url(
            "ACCESSBOT_PUBLIC_URL",
            &get("ACCESSBOT_PUBLIC_URL").unwrap_or_else(|| "http://localhost:3000".into()),
        )?;
        let addr_text = match (get("ACCESSBOT_ADDR"), get("PORT")) {
            (Some(addr), _) => addr,
            (None, Some(port)) => {
                let port: u16 = port.parse().map_err(|_| ConfigError {
                    variable: "PORT",
                    message: format!("{port:?} is not a port number"),
                })?;
                format!("0.0.0.0:{port}")
            }
            (None, None) => "0.0.0.0:3000".into(),
        };
        let addr = addr_text.parse().map_err(|_| ConfigError {
            variable: "ACCESSBOT_ADDR",
            message: format!("{addr_text:?} is not an address such as 0.0.0.0:3000"),
        })?;
        let interval_text = get("ACCESSBOT_SCHEDULER_INTERVAL").unwrap_or_else(|| "30s".into());
        let scheduler_interval = parse_interval(&interval_text).ok_or_else(|| ConfigError {
            variable: "ACCESSBOT_SCHEDULER_INTERVAL",
            message: format!(
                "{interval_text:?} is not an interval such as 30s, 500ms, 5m or 1h (at least 10ms)"
            ),
        })?;
        let remind_text = get("ACCESSBOT_REMINDER_AFTER").unwrap_or_else(|| "24h".into());
        let remind_after = parse_interval(&remind_text).ok_or_else(|| ConfigError {
            variable: "ACCESSBOT_REMINDER_AFTER",
            message: format!("{remind_text:?} is not a duration such as 24h, 2d or 30m"),
        })?;
        Ok(Config {
            database_url,
            slack,
            slack_api_url: parsed_api_url.as_str().trim_end_matches('/').to_string(),
            api_token: get("ACCESSBOT_API_TOKEN"),
            metrics_token: get("ACCESSBOT_METRICS_TOKEN"),
            addr,
            public_url,
            scheduler_interval,
            remind_after,
        })
    }
}

fn parse_http_url(variable: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|err| ConfigError {
        variable,
        message: format!("{text:?} is not a URL ({err})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError {
            variable,
            message: format!("{text:?} must be an http:// or https:// URL"),
        });
    }
    Ok(url)
}

/// `500ms`, `30s`, `5m`, `1h`, `2d`.
fn parse_interval(text: &str) -> Option<Duration> {
    let (digits, unit) = match text.strip_suffix("ms") {
        Some(digits) => (digits, 1),
        None => {
            let unit = match text.chars().last()? {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => return None,
            };
            (&text[..text.len() - 1], unit)
        }
    };
    let millis = digits.parse::<u64>().ok()?.checked_mul(unit)?;
    (millis >= 10).then(|| Duration::from_millis(millis))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("slack", &self.slack.as_ref().map(|_| "<configured>"))
            .field("slack_api_url", &self.slack_api_url)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("addr", &self.addr)
            .field("public_url", &self.public_url.as_str())
            .field("scheduler_interval", &self.scheduler_interval)
            .field("remind_after", &self.remind_after)
            .finish()
    }
}

/// Hides a password in a database URL.
fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.database_url, "sqlite://accessbot.db");
        assert_eq!(config.slack_api_url, "https://slack.com/api");
        assert_eq!(config.addr.to_string(), "0.0.0.0:3000");
        assert_eq!(config.scheduler_interval, Duration::from_secs(30));
        assert!(config.slack.is_none());
    }

    #[test]
    fn port_is_used_when_no_address_is_given() {
        let config = Config::from_vars(&vars(&[("PORT", "8080")])).unwrap();
        assert_eq!(config.addr.to_string(), "0.0.0.0:8080");
        let config = Config::from_vars(&vars(&[
            ("PORT", "8080"),
            ("ACCESSBOT_ADDR", "127.0.0.1:9"),
        ]))
        .unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:9");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("DATABASE_URL", "mysql://x"),
            ("SLACK_API_URL", "not a url"),
            ("ACCESSBOT_PUBLIC_URL", "ftp://x"),
            ("ACCESSBOT_ADDR", "nowhere"),
            ("PORT", "http"),
            ("ACCESSBOT_SCHEDULER_INTERVAL", "often"),
        ] {
            let err = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().starts_with(name));
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::from_vars(&vars(&[
            ("SLACK_BOT_TOKEN", "xoxb-secret-token"),
            ("SLACK_SIGNING_SECRET", "signing-secret-value"),
            ("ACCESSBOT_API_TOKEN", "api-secret-value"),
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        for secret in [
            "xoxb-secret-token",
            "signing-secret-value",
            "api-secret-value",
            "hunter2",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
