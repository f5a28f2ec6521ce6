//! Configuration from the environment (and a `.env` file), exactly as SPEC §5 names it.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use url::{Host, Url};

/// `.env` is read from the working directory only, never from a parent folder: a `.env`
/// left higher up (a home folder, a shared checkout) must not configure the bot unseen.
const DOTENV: &str = ".env";

/// The longest duration accepted (intervals here, access lengths in the domain): ten years
/// is beyond any real use and far below where adding it to a clock could overflow.
const LONGEST_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// The shortest interval accepted: anything shorter would spin the scheduler.
const SHORTEST_INTERVAL: Duration = Duration::from_millis(10);

/// The longest first wait between Socket Mode reconnections: the wait doubles from it up to
/// [`crate::socket_mode`]'s cap, and a longer base would leave the bot deaf for too long.
const LONGEST_SOCKET_BACKOFF: Duration = Duration::from_secs(60);

/// The settings accessbot runs with. Secrets are redacted in `Debug`.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub slack: Option<SlackCredentials>,
    /// Set when `SLACK_APP_TOKEN` is: Slack is heard over Socket Mode.
    pub socket_mode: Option<SocketModeConfig>,
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
    /// The users directory asks Slack again about a person known for longer than this.
    pub user_refresh: Duration,
}

#[derive(Clone)]
pub struct SlackCredentials {
    pub bot_token: String,
    /// Needed by the HTTP endpoints only; Socket Mode has no signatures.
    pub signing_secret: Option<String>,
}

/// Socket Mode: connections opened with the app-level token instead of Slack calling in.
#[derive(Clone)]
pub struct SocketModeConfig {
    /// The app-level token (`xapp-…`) that `apps.connections.open` wants.
    pub app_token: String,
    /// The first wait before reconnecting (`ACCESSBOT_SOCKET_BACKOFF`); later ones grow.
    pub backoff: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

/// Why the configuration could not be read at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Variable(#[from] ConfigError),
    #[error(transparent)]
    DotEnv(#[from] DotEnvError),
}

/// A `.env` that is present but unusable. The message never repeats the line: it may hold a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum DotEnvError {
    #[error("{file} line {line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: &'static str,
    },
    #[error("{file}: cannot be read: {source}")]
    Read { file: String, source: io::Error },
}

/// An interval or duration that is not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum IntervalError {
    #[error("{0:?} is not a duration such as 500ms, 30s, 5m, 1h or 2d")]
    Malformed(String),
    #[error("{0:?} is shorter than 10ms")]
    TooShort(String),
    #[error("{0:?} is longer than 10 years")]
    TooLong(String),
}

impl Config {
    /// Reads the process environment and `.env` in the working directory (a missing one is
    /// normal). A variable set in the environment wins over the same one in `.env`.
    pub fn from_env() -> Result<Config, StartupError> {
        // A variable that is not UTF-8 is none of ours; `env::vars` would panic on it.
        let mut vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        read_dotenv(Path::new(DOTENV), &mut vars)?;
        Ok(Config::from_vars(&vars)?)
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
        let socket_mode = match get("SLACK_APP_TOKEN") {
            Some(app_token) => Some(socket_mode_config(
                app_token,
                get("ACCESSBOT_SOCKET_BACKOFF"),
            )?),
            None => None,
        };
        let signing_secret = get("SLACK_SIGNING_SECRET");
        // Without Socket Mode, Slack can only reach the bot over HTTP, which needs the secret.
        let slack = match (get("SLACK_BOT_TOKEN"), signing_secret) {
            (Some(bot_token), signing_secret)
                if signing_secret.is_some() || socket_mode.is_some() =>
            {
                Some(SlackCredentials {
                    bot_token,
                    signing_secret,
                })
            }
            _ => None,
        };
        let slack_api_url = get("SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into());
        let parsed_api_url = parse_http_url("SLACK_API_URL", &slack_api_url)?;
        // The bot token travels with every call: only TLS protects it on the way, except to a
        // local fake or proxy on this machine.
        if parsed_api_url.scheme() != "https" && !is_loopback(&parsed_api_url) {
            return Err(ConfigError {
                variable: "SLACK_API_URL",
                message: format!(
                    "{slack_api_url:?} must be an https:// URL (http:// only for a loopback \
                     host such as 127.0.0.1 or localhost)"
                ),
            });
        }
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
        let scheduler_interval = parse_interval(&interval_text).map_err(|err| ConfigError {
            variable: "ACCESSBOT_SCHEDULER_INTERVAL",
            message: err.to_string(),
        })?;
        let remind_text = get("ACCESSBOT_REMINDER_AFTER").unwrap_or_else(|| "24h".into());
        let remind_after = parse_interval(&remind_text).map_err(|err| ConfigError {
            variable: "ACCESSBOT_REMINDER_AFTER",
            message: err.to_string(),
        })?;
        let refresh_text = get("ACCESSBOT_USER_REFRESH").unwrap_or_else(|| "24h".into());
        let user_refresh = parse_interval(&refresh_text).map_err(|err| ConfigError {
            variable: "ACCESSBOT_USER_REFRESH",
            message: err.to_string(),
        })?;
        Ok(Config {
            database_url,
            slack,
            socket_mode,
            slack_api_url: parsed_api_url.as_str().trim_end_matches('/').to_string(),
            api_token: get("ACCESSBOT_API_TOKEN"),
            metrics_token: get("ACCESSBOT_METRICS_TOKEN"),
            addr,
            public_url,
            scheduler_interval,
            remind_after,
            user_refresh,
        })
    }
}

/// Socket Mode's settings: an app-level token, and the first reconnection wait.
fn socket_mode_config(
    app_token: String,
    backoff: Option<String>,
) -> Result<SocketModeConfig, ConfigError> {
    // A bot token here would be refused by Slack with `not_allowed_token_type`; say so now.
    if !app_token.starts_with("xapp-") {
        return Err(ConfigError {
            variable: "SLACK_APP_TOKEN",
            message: "must be an app-level token (xapp-…) with the connections:write scope".into(),
        });
    }
    let backoff_text = backoff.unwrap_or_else(|| "1s".into());
    let backoff = parse_interval(&backoff_text).map_err(|err| ConfigError {
        variable: "ACCESSBOT_SOCKET_BACKOFF",
        message: err.to_string(),
    })?;
    if backoff > LONGEST_SOCKET_BACKOFF {
        return Err(ConfigError {
            variable: "ACCESSBOT_SOCKET_BACKOFF",
            message: format!("{backoff_text:?} is longer than 1m"),
        });
    }
    Ok(SocketModeConfig { app_token, backoff })
}

/// `127.0.0.0/8`, `::1` or `localhost`, for a URL given as text; false when it is no URL.
pub fn is_loopback_url(text: &str) -> bool {
    Url::parse(text).is_ok_and(|url| is_loopback(&url))
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

/// `127.0.0.0/8`, `::1` or `localhost`: traffic that never leaves this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `500ms`, `30s`, `5m`, `1h`, `2d`: from 10ms to 10 years.
fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let malformed = || IntervalError::Malformed(text.chars().take(40).collect());
    let too_long = || IntervalError::TooLong(text.chars().take(40).collect());
    let (digits, unit_millis) = match text.strip_suffix("ms") {
        Some(digits) => (digits, 1),
        None => {
            let unit = match text.chars().last() {
                Some('s') => 1000,
                Some('m') => 60_000,
                Some('h') => 3_600_000,
                Some('d') => 86_400_000,
                _ => return Err(malformed()),
            };
            // The unit is one ASCII byte, so this cut is on a character boundary.
            (&text[..text.len() - 1], unit)
        }
    };
    // Digits only: `u64::from_str` would also take a sign.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    // All digits, so a failed parse can only mean too many of them.
    let amount = digits.parse::<u64>().map_err(|_| too_long())?;
    let millis = amount.checked_mul(unit_millis).ok_or_else(too_long)?;
    let duration = Duration::from_millis(millis);
    if duration > LONGEST_DURATION {
        return Err(too_long());
    }
    if duration < SHORTEST_INTERVAL {
        return Err(IntervalError::TooShort(text.into()));
    }
    Ok(duration)
}

/// Adds the variables of the `.env` at `path` to `vars`, except those already there (the
/// environment wins). A missing file adds nothing; a malformed line is an error naming it.
fn read_dotenv(path: &Path, vars: &mut HashMap<String, String>) -> Result<(), DotEnvError> {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(DotEnvError::Read { file, source }),
    };
    // dotenvy skips a byte-order mark only when it loads into the process environment.
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let lines_started = Rc::new(Cell::new(0));
    let reader = LineByLine {
        rest: text,
        at_line_start: true,
        lines_started: Rc::clone(&lines_started),
    };
    for item in dotenvy::from_read_iter(reader) {
        let line = lines_started.get();
        match item {
            Ok((name, value)) => {
                vars.entry(name).or_insert(value);
            }
            Err(dotenvy::Error::LineParse(logical, _)) => {
                // A quoted value may span lines: name the line where the entry starts.
                let spanned = logical.trim_end_matches(['\r', '\n']).matches('\n').count();
                return Err(DotEnvError::Line {
                    file,
                    line: line.saturating_sub(spanned),
                    problem: "not a NAME=value line, or a quote that is never closed",
                });
            }
            Err(dotenvy::Error::Io(err)) if err.kind() == io::ErrorKind::InvalidData => {
                return Err(DotEnvError::Line {
                    file,
                    line,
                    problem: "not UTF-8 text",
                });
            }
            Err(dotenvy::Error::Io(source)) => return Err(DotEnvError::Read { file, source }),
            Err(_) => {
                return Err(DotEnvError::Line {
                    file,
                    line,
                    problem: "cannot be read",
                })
            }
        }
    }
    Ok(())
}

/// Hands dotenvy one line per read, so that the lines handed out so far tell which line it
/// was reading when it failed (it reports only the text, which may hold a secret).
struct LineByLine<'a> {
    rest: &'a [u8],
    at_line_start: bool,
    lines_started: Rc<Cell<usize>>,
}

impl Read for LineByLine<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let line_end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.rest.len(), |at| at + 1);
        let n = line_end.min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        buf[..n].copy_from_slice(&self.rest[..n]);
        if self.at_line_start {
            self.lines_started.set(self.lines_started.get() + 1);
        }
        self.at_line_start = self.rest[n - 1] == b'\n';
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("slack", &self.slack.as_ref().map(|_| "<configured>"))
            .field(
                "socket_mode",
                &self
                    .socket_mode
                    .as_ref()
                    .map(|socket| format!("<app token>, backoff {:?}", socket.backoff)),
            )
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
            .field("user_refresh", &self.user_refresh)
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
        assert_eq!(config.user_refresh, Duration::from_secs(24 * 3600));
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
    fn slack_api_url_must_be_https_unless_its_host_is_loopback() {
        for allowed in [
            "https://slack.com/api",
            "https://slack.example:8443/api",
            "http://127.0.0.1:4000/api",
            "http://127.1.2.3/api",
            "http://localhost:4000/api",
            "http://[::1]:4000/api",
        ] {
            let config = Config::from_vars(&vars(&[("SLACK_API_URL", allowed)]));
            assert!(config.is_ok(), "{allowed} refused: {:?}", config.err());
        }
        for refused in [
            "http://slack.com/api",
            "http://10.0.0.1/api",
            "http://128.0.0.1/api",
            "http://localhost.evil.example/api",
            "http://[::2]/api",
        ] {
            let err = Config::from_vars(&vars(&[("SLACK_API_URL", refused)])).unwrap_err();
            assert_eq!(err.variable, "SLACK_API_URL", "{refused}");
            assert!(err.to_string().contains("https://"), "{err}");
        }
    }

    #[test]
    fn intervals_read_every_unit_from_ten_milliseconds_to_ten_years() {
        for (text, expected) in [
            ("10ms", Duration::from_millis(10)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("2d", Duration::from_secs(2 * 86_400)),
            ("3660d", LONGEST_DURATION),
        ] {
            assert_eq!(parse_interval(text), Ok(expected), "{text}");
        }
        for text in ["", "s", "5", "5x", "+5s", "-5s", "1.5h", "5 s", "٣s"] {
            assert!(
                matches!(parse_interval(text), Err(IntervalError::Malformed(_))),
                "{text}"
            );
        }
        assert!(matches!(
            parse_interval("9ms"),
            Err(IntervalError::TooShort(_))
        ));
    }

    #[test]
    fn durations_over_ten_years_are_refused_without_overflowing() {
        for text in [
            "3661d",
            "87841h",
            "316224001s",
            "18446744073709551615d",
            "99999999999999999999999999ms",
        ] {
            assert!(
                matches!(parse_interval(text), Err(IntervalError::TooLong(_))),
                "{text}"
            );
        }
        for name in [
            "ACCESSBOT_SCHEDULER_INTERVAL",
            "ACCESSBOT_REMINDER_AFTER",
            "ACCESSBOT_USER_REFRESH",
        ] {
            let err = Config::from_vars(&vars(&[(name, "4000d")])).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains("10 years"), "{err}");
        }
    }

    /// A `.env` with `text` in a folder of its own.
    fn dotenv_file(test: &str, text: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("accessbot-config-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn dotenv_fills_only_what_the_environment_does_not_set() {
        let path = dotenv_file(
            "fills",
            "# a comment\n\nSLACK_BOT_TOKEN=from-file\nexport ACCESSBOT_ADDR=\"127.0.0.1:9\"\n\
             ACCESSBOT_API_TOKEN=from-file\nACCESSBOT_API_TOKEN=second\n",
        );
        let mut env = vars(&[("SLACK_BOT_TOKEN", "from-environment")]);
        read_dotenv(&path, &mut env).unwrap();
        assert_eq!(env["SLACK_BOT_TOKEN"], "from-environment");
        assert_eq!(env["ACCESSBOT_ADDR"], "127.0.0.1:9");
        assert_eq!(env["ACCESSBOT_API_TOKEN"], "from-file");
    }

    #[test]
    fn a_missing_dotenv_is_normal() {
        let mut env = vars(&[]);
        let missing = std::env::temp_dir().join("accessbot-config-no-such-folder/.env");
        read_dotenv(&missing, &mut env).unwrap();
        assert!(env.is_empty());
    }

    #[test]
    fn a_malformed_dotenv_line_is_named_by_its_number_without_its_text() {
        for (test, text, line) in [
            ("first", "not a line with-secret-1\n", 1),
            ("third", "A=1\n# note\nB C with-secret-1\nD=4\n", 3),
            ("no-newline", "A=1\n\nwith-secret-1", 3),
            ("crlf", "A=1\r\nB=2\r\n=with-secret-1\r\n", 3),
            (
                "after-multiline",
                "A=\"one\ntwo\nthree\"\nB=ok\nbad with-secret-1\n",
                5,
            ),
            ("unclosed-quote", "A=1\nB=\"with-secret-1\nC=3\n", 2),
            ("bom", "\u{feff}A=1\nB C with-secret-1\n", 2),
        ] {
            let path = dotenv_file(test, text);
            let err = read_dotenv(&path, &mut vars(&[])).unwrap_err();
            let shown = err.to_string();
            assert!(
                matches!(err, DotEnvError::Line { line: l, .. } if l == line),
                "{test}: {shown}"
            );
            assert!(shown.contains(&format!(".env line {line}: ")), "{shown}");
            assert!(!shown.contains("with-secret-1"), "{shown}");
        }
    }

    #[test]
    fn socket_mode_needs_no_signing_secret_but_http_alone_does() {
        let config = Config::from_vars(&vars(&[
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_APP_TOKEN", "xapp-1"),
        ]))
        .unwrap();
        let slack = config.slack.expect("Slack is configured");
        assert!(slack.signing_secret.is_none());
        let socket = config.socket_mode.expect("Socket Mode is on");
        assert_eq!(socket.backoff, Duration::from_secs(1));

        let config = Config::from_vars(&vars(&[("SLACK_BOT_TOKEN", "xoxb-1")])).unwrap();
        assert!(config.slack.is_none() && config.socket_mode.is_none());
    }

    #[test]
    fn socket_mode_settings_are_checked() {
        let err = Config::from_vars(&vars(&[("SLACK_APP_TOKEN", "xoxb-1")])).unwrap_err();
        assert_eq!(err.variable, "SLACK_APP_TOKEN");
        assert!(err.to_string().contains("xapp-"), "{err}");
        for (backoff, expected) in [("5ms", "shorter"), ("2m", "longer than 1m"), ("x", "not")] {
            let err = Config::from_vars(&vars(&[
                ("SLACK_APP_TOKEN", "xapp-1"),
                ("ACCESSBOT_SOCKET_BACKOFF", backoff),
            ]))
            .unwrap_err();
            assert_eq!(err.variable, "ACCESSBOT_SOCKET_BACKOFF");
            assert!(err.to_string().contains(expected), "{err}");
        }
        let config = Config::from_vars(&vars(&[
            ("SLACK_APP_TOKEN", "xapp-1"),
            ("ACCESSBOT_SOCKET_BACKOFF", "20ms"),
        ]))
        .unwrap();
        assert_eq!(
            config.socket_mode.map(|s| s.backoff),
            Some(Duration::from_millis(20))
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::from_vars(&vars(&[
            ("SLACK_BOT_TOKEN", "xoxb-secret-token"),
            ("SLACK_SIGNING_SECRET", "signing-secret-value"),
            ("SLACK_APP_TOKEN", "xapp-secret-app-token"),
            ("ACCESSBOT_API_TOKEN", "api-secret-value"),
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        for secret in [
            "xoxb-secret-token",
            "signing-secret-value",
            "xapp-secret-app-token",
            "api-secret-value",
            "hunter2",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
