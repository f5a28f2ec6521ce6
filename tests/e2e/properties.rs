//! Properties that must hold for every input, not just the examples: signatures, access
//! lengths, mrkdwn escaping, Block Kit truncation and payload parsing of arbitrary bytes.

use accessbot::domain::{AccessLength, AccessRequest, CardKind, Status};
use accessbot::slack::{blocks, events, mrkdwn, payload, signature};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;

use crate::support::fake_slack::{check_block_kit, Surface};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_signature_verifies_only_for_its_own_body_time_and_secret(
        secret in "[ -~]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
        other in proptest::collection::vec(any::<u8>(), 0..512),
        ts in 1_000_000_000i64..2_000_000_000,
        skew in -400i64..400,
    ) {
        let ts_text = ts.to_string();
        let signed = signature::sign(&secret, &ts_text, &body);
        let now = ts + skew;
        let verdict = signature::verify(&secret, Some(&ts_text), Some(&signed), &body, now);
        prop_assert_eq!(verdict.is_ok(), skew.abs() <= 300);
        if other != body && skew.abs() <= 300 {
            let forged = signature::verify(&secret, Some(&ts_text), Some(&signed), &other, now);
            prop_assert!(forged.is_err());
        }
        let wrong_secret = format!("{secret}x");
        prop_assert!(signature::verify(&wrong_secret, Some(&ts_text), Some(&signed), &body, ts).is_err());
    }

    #[test]
    fn any_signature_header_is_answered_without_panicking(
        ts in ".{0,30}",
        sig in ".{0,80}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = signature::verify("secret", Some(&ts), Some(&sig), &body, 1_700_000_000);
    }

    #[test]
    fn access_lengths_parse_back_to_what_they_print(amount in 1u32..5000, unit in "[smhdw]") {
        let text = format!("{amount}{unit}");
        if let Ok(length) = text.parse::<AccessLength>() {
            prop_assert_eq!(length.to_string(), text);
            prop_assert!(length.duration().is_some_and(|d| d.num_seconds() > 0));
        }
    }

    #[test]
    fn any_text_either_parses_as_an_access_length_or_is_refused(text in "\\PC{0,24}") {
        if let Ok(length) = text.parse::<AccessLength>() {
            let again: AccessLength = length.to_string().parse().unwrap();
            prop_assert_eq!(again, length);
        }
    }

    #[test]
    fn escaped_text_has_no_control_characters_of_mrkdwn(text in "\\PC{0,300}") {
        let escaped = mrkdwn::escape(&text);
        prop_assert!(!escaped.contains('<') && !escaped.contains('>'));
        let unescaped = escaped
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        prop_assert_eq!(unescaped, text);
    }

    #[test]
    fn truncation_respects_the_limit_and_never_splits_an_entity(
        text in "[a-z<>& ]{0,400}",
        max in 1usize..200,
    ) {
        let cut = mrkdwn::truncate(&mrkdwn::escape(&text), max);
        prop_assert!(cut.chars().count() <= max);
        if let Some(amp) = cut.rfind('&') {
            let tail = &cut[amp..];
            prop_assert!(
                tail.starts_with("&amp;") || tail.starts_with("&lt;") || tail.starts_with("&gt;"),
                "split entity at the end of {:?}", cut
            );
        }
    }

    #[test]
    fn every_card_stays_within_block_kit_limits(
        comment in "\\PC{0,12000}",
        group_count in 0usize..100,
        admin_count in 1usize..100,
        status in 0usize..7,
        kind in 0usize..4,
    ) {
        let request = request_with(comment, group_count, admin_count, Status::ALL[status]);
        let kind = [CardKind::Approval, CardKind::Provisioning, CardKind::Removal, CardKind::Receipt][kind];
        let content = blocks::card(&request, kind, "UADMIN0", request.created_at);
        let message = serde_json::to_value(&content).unwrap();
        prop_assert!(check_block_kit(Surface::Message, &message).is_ok(), "{:?}", check_block_kit(Surface::Message, &message).err());
    }

    #[test]
    fn arbitrary_interaction_bodies_are_parsed_or_refused_without_panicking(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let _ = payload::parse_interaction(&body);
        let _ = events::parse_event(&body);
    }

    #[test]
    fn mangled_real_payloads_are_parsed_or_refused_without_panicking(
        cut in 0usize..1200,
        flip in 0usize..1200,
        byte in any::<u8>(),
    ) {
        let mut body = format!("payload={}", urlencode(&sample_click().to_string())).into_bytes();
        if flip < body.len() {
            body[flip] = byte;
        }
        body.truncate(cut.min(body.len()));
        let _ = payload::parse_interaction(&body);
        let mut event = sample_event().to_string().into_bytes();
        if flip < event.len() {
            event[flip] = byte;
        }
        event.truncate(cut.min(event.len()));
        let _ = events::parse_event(&event);
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn sample_click() -> serde_json::Value {
    json!({
        "type": "block_actions",
        "user": {"id": "U1", "username": "a", "name": "a", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "t",
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "D1", "is_ephemeral": false},
        "trigger_id": "1.2.abc",
        "team": {"id": "T1", "domain": "x"},
        "channel": {"id": "D1", "name": "directmessage"},
        "actions": [{"action_id": "approve", "block_id": "b", "value": "1", "type": "button", "action_ts": "1.3",
                     "text": {"type": "plain_text", "text": "Approve"}}]
    })
}

fn sample_event() -> serde_json::Value {
    json!({
        "type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1,
        "event": {"type": "message", "channel": "D1", "user": "U1", "text": "hi", "ts": "2.1",
                  "thread_ts": "1.1", "event_ts": "2.1", "channel_type": "im"}
    })
}

fn request_with(comment: String, groups: usize, admins: usize, status: Status) -> AccessRequest {
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    let long = |prefix: &str, i: usize| format!("{prefix}{i:0>70}<&>");
    AccessRequest {
        id: 42,
        app: "github".into(),
        app_name: "GitHub <Enterprise> & co".into(),
        target_user: "UTARGET".into(),
        requester: "UREQUESTER".into(),
        permission: long("perm", 0),
        groups: (0..groups).map(|i| long("group", i)).collect(),
        comment,
        access_length: "7d".parse().unwrap(),
        status,
        approvers: (0..admins).map(|i| format!("UAPPROVER{i}")).collect(),
        app_admins: (0..admins).map(|i| format!("UADMIN{i}")).collect(),
        admin_channel: Some("CADMINS".into()),
        created_at: at,
        updated_at: at,
        approved_by: Some("UAPPROVER0".into()),
        approved_at: Some(at),
        decided_by: Some("UADMIN0".into()),
        decided_at: Some(at),
        provisioned_at: Some(at),
        expires_at: Some(at),
        denial_feedback: Some("<!channel> no & no".repeat(200)),
        version: 3,
        ..Default::default()
    }
}
