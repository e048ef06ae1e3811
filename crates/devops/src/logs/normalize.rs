//! Normalizing error messages so that occurrences differing only in ids and numbers group
//! together: UUIDs become `<uuid>`, hex ids `<hex>`, numbers `<n>`.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::text::prefix_bytes;

/// Longest normalized message kept, in bytes: long tails rarely help grouping.
pub const MAX_MESSAGE_BYTES: usize = 300;

static VARIABLE_PARTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
        | (?P<hex>\b0[xX][0-9a-fA-F]+\b | \b[0-9a-fA-F]{8,}\b)
        | (?P<num>\d+(?:\.\d+)*)",
    )
    // invariant: a constant pattern, compiled by this module's tests.
    .expect("normalization regex is valid")
});

/// `message` with its variable parts replaced, trimmed and capped at `MAX_MESSAGE_BYTES`.
pub fn normalize_message(message: &str) -> String {
    let replaced = VARIABLE_PARTS.replace_all(message, |c: &Captures<'_>| -> Cow<'static, str> {
        if c.name("uuid").is_some() {
            Cow::Borrowed("<uuid>")
        } else if let Some(hex) = c.name("hex") {
            let text = hex.as_str();
            if text.bytes().all(|b| b.is_ascii_digit()) {
                Cow::Borrowed("<n>")
            } else if text.starts_with("0x")
                || text.starts_with("0X")
                || text.bytes().any(|b| b.is_ascii_digit())
            {
                Cow::Borrowed("<hex>")
            } else {
                // A word made only of the letters a-f (e.g. "deadbeefcafe" is rare, "accepted"
                // is not hex at all): keep words without digits.
                Cow::Owned(text.to_owned())
            }
        } else {
            Cow::Borrowed("<n>")
        }
    });
    prefix_bytes(replaced.trim(), MAX_MESSAGE_BYTES)
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_ids_and_numbers() {
        assert_eq!(
            normalize_message("user 42 failed login from 10.0.0.7 after 3.5s"),
            "user <n> failed login from <n> after <n>s"
        );
        assert_eq!(
            normalize_message("request 123e4567-e89b-12d3-a456-426614174000 timed out"),
            "request <uuid> timed out"
        );
        assert_eq!(
            normalize_message("segfault at 0x7ffd1234 in deadbeef01 worker7"),
            "segfault at <hex> in <hex> worker<n>"
        );
        assert_eq!(
            normalize_message("  feedfacecafe decoded  "),
            "feedfacecafe decoded"
        );
    }

    #[test]
    fn different_ids_group_together() {
        let a = normalize_message("order 1001 failed: id=ab12cd34ef56");
        let b = normalize_message("order 2002 failed: id=0099aabbccdd");
        assert_eq!(a, b);
    }

    #[test]
    fn caps_long_messages_on_char_boundaries() {
        let long = "é".repeat(1_000);
        let normalized = normalize_message(&long);
        assert!(normalized.len() <= MAX_MESSAGE_BYTES);
        assert!(normalized.chars().all(|c| c == 'é'));
    }
}
