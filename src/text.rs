//! Untrusted text made safe for logs and error messages.

/// The most bytes of text from a token (or a key set) that the crate puts
/// into an event or an error message.
pub(crate) const EXCERPT_LEN: usize = 64;

/// A bounded, escaped excerpt of untrusted text for logs and error
/// messages: printable ASCII stays, everything else (control characters,
/// quotes, backslashes, non-ASCII) is escaped, and the result is cut at
/// [`EXCERPT_LEN`] bytes with a trailing `…`.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(EXCERPT_LEN + 3));
    for c in text.chars() {
        let before = out.len();
        if c == ' ' || c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'') {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
        if out.len() > EXCERPT_LEN {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("k1"), "k1");
        assert_eq!(excerpt("a\nb\"c\\d`"), "a\\nb\\\"c\\\\d`");
        assert_eq!(excerpt("é"), "\\u{e9}");
        let long = excerpt(&"A".repeat(16 * 1024));
        assert!(long.len() <= EXCERPT_LEN + '…'.len_utf8(), "{}", long.len());
        assert!(long.ends_with('…'));
        let escapes = excerpt(&"\u{1}".repeat(100));
        assert!(escapes.len() <= EXCERPT_LEN + '…'.len_utf8());
        assert!(!escapes.contains('\u{1}'));
    }
}
