//! Safe text for Slack: escaping user-supplied text for mrkdwn and truncating to limits.
//!
//! Slack's mrkdwn turns `<!channel>`, `<@U123>` and `<https://…|label>` into pings, mentions
//! and links. Escaping `&`, `<` and `>` (and nothing else, as Slack asks) makes any text
//! render literally.

/// The mark ending a truncated text.
pub const ELLIPSIS: char = '…';

/// Escapes `&`, `<` and `>` so that user text renders literally in mrkdwn.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Cuts mrkdwn `text` to at most `max_chars` characters (not bytes), ending with `…` when
/// cut. The cut never leaves half an escape entity (`&am…`) or half of a `<…>` mention or
/// link the renderer wrote itself, so it is safe on already escaped text.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut kept: String = text.chars().take(max_chars - 1).collect();
    // An entity is at most five characters (`&amp;`): a `&` among the last four kept
    // characters without its `;` is a cut entity.
    if let Some(amp) = kept.rfind('&') {
        let tail = &kept[amp..];
        if !tail.contains(';') && tail.chars().count() <= 4 {
            kept.truncate(amp);
        }
    }
    // Escaped user text holds no raw `<`, so an unclosed one is our own markup: drop it whole.
    if let Some(open) = kept.rfind('<') {
        if !kept[open..].contains('>') {
            kept.truncate(open);
        }
    }
    kept.push(ELLIPSIS);
    kept
}

/// Escapes user text and truncates the result to `max_chars`.
pub fn escape_truncated(text: &str, max_chars: usize) -> String {
    truncate(&escape(text), max_chars)
}

/// Cuts text for a `plain_text` object (which Slack never parses) to `max_chars`
/// characters, ending with `…` when cut.
pub fn plain(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut kept: String = text.chars().take(max_chars - 1).collect();
    kept.push(ELLIPSIS);
    kept
}

/// Joins already formatted items with `, ` into at most `max_chars` characters; items that
/// do not fit are counted in a final "and N more". Items are never cut in half.
pub fn list(items: &[String], max_chars: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        let separator = if i == 0 { 0 } else { 2 };
        let item_len = item.chars().count();
        let rest = items.len() - i - 1;
        // Room for this item, and for the "and N more" that may follow it.
        let reserve = if rest == 0 {
            0
        } else {
            format!(" and {rest} more").chars().count()
        };
        if used + separator + item_len + reserve > max_chars {
            let more = items.len() - i;
            let suffix = if i == 0 {
                format!("{more} entries")
            } else {
                format!(" and {more} more")
            };
            out.push_str(&suffix);
            return truncate(&out, max_chars);
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
        used += separator + item_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_turns_pings_and_links_into_literal_text() {
        assert_eq!(
            escape("<!channel> <https://evil.example|click> & co"),
            "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co"
        );
        assert_eq!(escape("plain *bold* _it_ ✓"), "plain *bold* _it_ ✓");
    }

    #[test]
    fn truncate_counts_characters_and_ends_with_an_ellipsis() {
        assert_eq!(truncate("short", 5), "short");
        assert_eq!(truncate("abcdef", 5), "abcd…");
        assert_eq!(truncate("ééééé✓✓", 4), "ééé…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 1), "…");
    }

    #[test]
    fn truncate_never_leaves_half_an_entity() {
        let escaped = escape("ab<&>");
        assert_eq!(escaped, "ab&lt;&amp;&gt;");
        for max in 1..escaped.chars().count() {
            let cut = truncate(&escaped, max);
            assert!(cut.chars().count() <= max, "{cut} longer than {max}");
            assert!(cut.ends_with(ELLIPSIS));
            let body = cut.trim_end_matches(ELLIPSIS);
            if let Some(amp) = body.rfind('&') {
                assert!(body[amp..].contains(';'), "{cut} ends in a partial entity");
            }
        }
        assert_eq!(truncate(&escaped, 8), "ab&lt;…");
    }

    #[test]
    fn truncate_never_leaves_half_a_mention() {
        assert_eq!(truncate("hi <@U123456>", 10), "hi …");
    }

    #[test]
    fn every_cut_of_a_hostile_text_stays_safe() {
        let escaped = escape(&"<&>x".repeat(50));
        for max in 0..escaped.chars().count() + 2 {
            let cut = truncate(&escaped, max);
            assert!(cut.chars().count() <= max);
            assert!(!cut.contains('<') && !cut.contains('>'));
            let body = cut.trim_end_matches(ELLIPSIS);
            if let Some(amp) = body.rfind('&') {
                assert!(body[amp..].contains(';'));
            }
        }
    }

    #[test]
    fn plain_cuts_without_caring_for_markup() {
        assert_eq!(plain("a&amp;b", 4), "a&a…");
        assert_eq!(plain("Send feedback", 24), "Send feedback");
    }

    #[test]
    fn list_counts_what_does_not_fit() {
        let items: Vec<String> = (0..100).map(|i| format!("<@U{i:05}>")).collect();
        let text = list(&items, 100);
        assert!(text.chars().count() <= 100, "{text}");
        assert!(text.starts_with("<@U00000>, <@U00001>"));
        assert!(text.ends_with(" more"), "{text}");
        let shown = text.matches("<@").count();
        assert!(text.ends_with(&format!("and {} more", 100 - shown)));
        assert_eq!(list(&items[..2], 100), "<@U00000>, <@U00001>");
        assert_eq!(list(&[], 100), "");
    }
}
