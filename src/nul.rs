//! U+0000 (NUL) in text from outside. PostgreSQL refuses the byte in `text` where SQLite
//! stores it, so a NUL that reached the store would be a 500 on one backend and kept on the
//! other. It is refused at the edge instead, on every backend alike, and never stripped:
//! what a person wrote is kept as written or not at all.
//!
//! NUL can arrive in only three spellings: `%00` in a URL or form body, the escape `\u0000`
//! in JSON (a raw control byte is not valid JSON), and a raw byte in an already decoded
//! string. The cheap checks below look for the spelling; the JSON one confirms by parsing,
//! so that an escaped backslash followed by `u0000` is not mistaken for NUL.

use serde_json::Value;

/// What every refusal says.
pub const REFUSAL: &str = "text must not contain the NUL character (U+0000, %00 or \\u0000)";

/// Whether a percent-encoded URL or `application/x-www-form-urlencoded` body decodes to
/// text with a NUL in it.
pub fn in_percent_encoded(raw: &[u8]) -> bool {
    raw.windows(3).any(|w| w == b"%00")
}

/// Whether a JSON document holds a string (or key) with a NUL in it.
pub fn in_json(json: &[u8]) -> bool {
    const ESCAPE: &[u8] = b"\\u0000";
    if !json.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return false;
    }
    // Rare: confirm on the parsed document. Text that is not JSON is refused by its parser.
    serde_json::from_slice::<Value>(json).is_ok_and(|value| in_value(&value))
}

fn in_value(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(in_value),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || in_value(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_nul_is_found_and_nothing_else_is() {
        assert!(in_percent_encoded(b"user_id=U1%00&text=list"));
        assert!(in_percent_encoded(b"/api/v1/apps/a%00b"));
        assert!(!in_percent_encoded(b"text=100%2500"));
        assert!(!in_percent_encoded(b"text=%0A%20"));
    }

    #[test]
    fn json_nul_is_found_in_values_and_keys_but_not_in_escaped_backslashes() {
        assert!(in_json(br#"{"a":"x\u0000y"}"#));
        assert!(in_json(br#"{"a":[{"b":"\u0000"}]}"#));
        assert!(in_json(br#"{"\u0000":1}"#));
        assert!(!in_json(br#"{"a":"\\u0000"}"#));
        assert!(!in_json(br#"{"a":"plain"}"#));
        assert!(!in_json(b"not json \\u0000"));
    }
}
