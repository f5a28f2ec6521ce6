//! How long access lasts once provisioned: `unlimited`, or an amount and a unit.

use std::fmt;
use std::str::FromStr;

use chrono::Duration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The longest access length accepted: ten years (as for the intervals in `config`), so
/// `expires_at` never overflows.
const MAX_SECONDS: i64 = 10 * 366 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLength {
    #[default]
    Unlimited,
    Limited {
        amount: u32,
        unit: TimeUnit,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("access_length must be \"unlimited\" or a positive number with a unit s, m, h, d or w (e.g. \"7d\"), at most 10 years; got {0:?}")]
pub struct InvalidAccessLength(pub String);

impl TimeUnit {
    fn seconds(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1,
            TimeUnit::Minutes => 60,
            TimeUnit::Hours => 3600,
            TimeUnit::Days => 86_400,
            TimeUnit::Weeks => 604_800,
        }
    }

    fn suffix(self) -> char {
        match self {
            TimeUnit::Seconds => 's',
            TimeUnit::Minutes => 'm',
            TimeUnit::Hours => 'h',
            TimeUnit::Days => 'd',
            TimeUnit::Weeks => 'w',
        }
    }

    fn word(self, amount: u32) -> &'static str {
        let singular = amount == 1;
        match (self, singular) {
            (TimeUnit::Seconds, true) => "second",
            (TimeUnit::Seconds, false) => "seconds",
            (TimeUnit::Minutes, true) => "minute",
            (TimeUnit::Minutes, false) => "minutes",
            (TimeUnit::Hours, true) => "hour",
            (TimeUnit::Hours, false) => "hours",
            (TimeUnit::Days, true) => "day",
            (TimeUnit::Days, false) => "days",
            (TimeUnit::Weeks, true) => "week",
            (TimeUnit::Weeks, false) => "weeks",
        }
    }
}

impl AccessLength {
    /// The duration, or `None` for unlimited access.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            AccessLength::Unlimited => None,
            AccessLength::Limited { amount, unit } => {
                Some(Duration::seconds(i64::from(*amount) * unit.seconds()))
            }
        }
    }

    /// Words for people: "Unlimited", "7 days".
    pub fn human(&self) -> String {
        match self {
            AccessLength::Unlimited => "Unlimited".to_string(),
            AccessLength::Limited { amount, unit } => format!("{amount} {}", unit.word(*amount)),
        }
    }
}

impl FromStr for AccessLength {
    type Err = InvalidAccessLength;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidAccessLength(s.chars().take(40).collect());
        let trimmed = s.trim();
        if trimmed.eq_ignore_ascii_case("unlimited") {
            return Ok(AccessLength::Unlimited);
        }
        let unit = match trimmed.chars().last().map(|c| c.to_ascii_lowercase()) {
            Some('s') => TimeUnit::Seconds,
            Some('m') => TimeUnit::Minutes,
            Some('h') => TimeUnit::Hours,
            Some('d') => TimeUnit::Days,
            Some('w') => TimeUnit::Weeks,
            _ => return Err(invalid()),
        };
        let digits = &trimmed[..trimmed.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let amount: u32 = digits.parse().map_err(|_| invalid())?;
        if amount == 0 || i64::from(amount) * unit.seconds() > MAX_SECONDS {
            return Err(invalid());
        }
        Ok(AccessLength::Limited { amount, unit })
    }
}

impl fmt::Display for AccessLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLength::Unlimited => f.write_str("unlimited"),
            AccessLength::Limited { amount, unit } => write!(f, "{amount}{}", unit.suffix()),
        }
    }
}

impl Serialize for AccessLength {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccessLength {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_prints_it_back() {
        for text in ["30s", "15m", "12h", "7d", "2w", "unlimited"] {
            let parsed: AccessLength = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(
            "7d".parse::<AccessLength>().unwrap().duration(),
            Some(Duration::days(7))
        );
        assert_eq!("1d".parse::<AccessLength>().unwrap().human(), "1 day");
    }

    #[test]
    fn ten_years_is_the_longest_length_accepted() {
        for text in ["3660d", "522w", "87840h"] {
            assert!(text.parse::<AccessLength>().is_ok(), "{text} refused");
        }
        for text in ["3661d", "523w", "87841h", "4294967295w"] {
            let err = text.parse::<AccessLength>().unwrap_err().to_string();
            assert!(
                err.contains("access_length") && err.contains("10 years"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn rejects_nonsense_zero_negative_and_huge_lengths() {
        for text in [
            "",
            "d",
            "0d",
            "-1d",
            "1.5d",
            "7 days",
            "7y",
            "99999999w",
            "1d1",
            "٣d",
        ] {
            assert!(text.parse::<AccessLength>().is_err(), "{text} accepted");
        }
    }
}
