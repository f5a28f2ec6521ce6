//! Slack's v0 request signing: HMAC-SHA256 of `v0:{timestamp}:{raw body}`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Requests older or newer than this are replays, whatever their signature.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp header")]
    Missing,
    #[error("X-Slack-Request-Timestamp is not a Unix time")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// The signature Slack sends for `body` at `timestamp`: `v0=` and lowercase hex.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Checks a request's headers against its raw body at Unix time `now`.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now.abs_diff(sent_at) > MAX_SKEW_SECONDS as u64 {
        return Err(SignatureError::Stale);
    }
    let Some(hex_signature) = signature.strip_prefix("v0=") else {
        return Err(SignatureError::Mismatch);
    };
    let Ok(given) = hex::decode(hex_signature) else {
        return Err(SignatureError::Mismatch);
    };
    let expected = mac(secret, timestamp, body).finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn reproduces_slacks_documented_example() {
        assert_eq!(sign(SECRET, TIMESTAMP, BODY.as_bytes()), EXPECTED);
        let now = 1531420618 + 60;
        assert_eq!(
            verify(
                SECRET,
                Some(TIMESTAMP),
                Some(EXPECTED),
                BODY.as_bytes(),
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn rejects_tampering_staleness_and_missing_headers() {
        let now = 1531420618;
        let body = BODY.as_bytes();
        let check = |ts: Option<&str>, sig: Option<&str>, body: &[u8], now| {
            verify(SECRET, ts, sig, body, now)
        };
        assert_eq!(
            check(Some(TIMESTAMP), Some(EXPECTED), b"token=x", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(TIMESTAMP), Some(EXPECTED), body, now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(TIMESTAMP), Some(EXPECTED), body, now - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(TIMESTAMP), Some(EXPECTED), body, now + 300),
            Ok(())
        );
        assert_eq!(
            check(None, Some(EXPECTED), body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(Some(TIMESTAMP), None, body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(Some("soon"), Some(EXPECTED), body, now),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            check(Some(TIMESTAMP), Some("v0=zz"), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(TIMESTAMP), Some("v1=00"), body, now),
            Err(SignatureError::Mismatch)
        );
    }
}
